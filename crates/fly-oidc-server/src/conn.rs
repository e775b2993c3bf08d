//! Client connections: the accept loop, the connection cap with eviction, and each
//! connection's idle, header, write and total-life limits.
//!
//! Any local process can open connections to the server without a credential, so none may
//! lock legitimate clients out or grow the server without bound:
//!
//! - **A cap with room for new clients.** At most `max_connections` are open (and fewer than
//!   the soft `RLIMIT_NOFILE`, raised towards the hard limit at start). A connection beyond
//!   the cap is accepted, and the one that has been idle the longest (else the one whose
//!   current request began first) is closed: a flood ages out, the newcomer is served.
//! - **Cheap waiting connections.** A connection waits on the bare socket until a whole
//!   request head has arrived (peeked, left in the kernel's buffer; a head longer than
//!   [`PEEK_LIMIT`] is read by hyper instead, up to its 16 KiB cap), and a keep-alive
//!   connection idle for [`PARK_AFTER`] gives its HTTP state (hyper's buffers, about 16 KiB)
//!   back and waits so again: silent, idle and slow-header connections cost about a task.
//!   At most `max_active_connections` connections hold HTTP state at once, the same eviction making
//!   room. Memory stays bounded under a flood; small kernel socket buffers bound what a
//!   client that pipelines without reading makes the server do.
//! - **Limits per connection**, checked by a timer in the connection's own task from what its
//!   socket does ([`Tracked`]): the header limit (a new connection's first byte, and the
//!   whole head from its first byte), the idle limit (between requests), the write limit (a
//!   response that cannot be written because the client does not read) and the total-life
//!   limit (then the connection is closed after its current answer, with `Connection: close`).
//! - **Out of descriptors** (`EMFILE`) in accept: the idlest connections are closed, accept
//!   waits a little (no busy loop) and the warning is logged at most every 10 s.
//!
//! HTTP itself is hyper's: this module only decides when a connection ends.

use crate::handler::State;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How long a keep-alive connection waits for its next request holding hyper's state, before
/// it gives that state back and waits on the bare socket.
pub(crate) const PARK_AFTER: Duration = Duration::from_secs(1);
/// Descriptors kept for everything but client connections (upstream calls, files, the
/// runtime): the connection cap stays this far below the soft `RLIMIT_NOFILE`.
const FD_RESERVE: usize = 64;
/// How long accept waits after running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// At most one warning per this interval for the same condition.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// The largest request head accepted (bytes); request bodies are never read.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// The longest of the limits' durations: a longer one is taken as a day.
const LONGEST_LIMIT: Duration = Duration::from_secs(24 * 60 * 60);

/// What client connections may take
/// ([`Builder::connection_limits`](crate::Builder::connection_limits)). A duration longer
/// than a day is taken as a day; a zero duration is refused by
/// [`Builder::start`](crate::Builder::start) (no client could be served). New limits may be
/// added, so change the defaults field by field.
/// Botocore gives the endpoint 2 s per attempt; the defaults answer a new client within that
/// while 10,000 hostile connections are open.
///
/// ```
/// use fly_oidc_server::ConnectionLimits;
/// use std::time::Duration;
/// let mut limits = ConnectionLimits::default();
/// limits.idle_timeout = Duration::from_secs(10);
/// assert_eq!(limits.max_connections, 16384);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// The most client connections open at once (default 16384, lowered to fit the open file
    /// limit: the server raises its soft `RLIMIT_NOFILE` towards the hard one as far as this
    /// needs, and keeps 64 descriptors for everything else; at least 1). A connection beyond
    /// the cap is served, and room is made by closing the connection idle the longest, else
    /// the one whose current request began first: a flood cannot keep new clients out.
    pub max_connections: usize,
    /// The most connections with a request in progress at once, each holding hyper's buffers
    /// (about 16 KiB; default 1024, at most `max_connections`, at least 1). Beyond it, room is
    /// made the same way: this bounds memory under a flood.
    pub max_active_connections: usize,
    /// How long a client may take to send a request head (default 5 s): a new connection has
    /// this long to send its first byte, and every request this long from its first byte to
    /// the end of its head. Then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (default 30 s), so SDK
    /// clients reuse their connection across a burst of calls. After 1 s of waiting it holds
    /// no HTTP buffers, so idle connections cost little.
    pub idle_timeout: Duration,
    /// How long an answer may wait for a client that does not read it (default 5 s): a
    /// connection whose socket takes no byte of the answer for this long is closed (a client
    /// that pipelines requests and never reads cannot pin it).
    pub write_timeout: Duration,
    /// The total life of a connection (default 5 minutes): then it is closed, an idle one at
    /// once, a busy one after its current answer (sent with `Connection: close`, so the client
    /// opens a new one).
    pub max_connection_age: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 16384,
            max_active_connections: 1024,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(5),
            max_connection_age: Duration::from_secs(300),
        }
    }
}

impl ConnectionLimits {
    /// These limits with the connection cap below the descriptor limit, after raising the
    /// soft `RLIMIT_NOFILE` towards the hard one as far as the cap needs, and no duration
    /// longer than [`LONGEST_LIMIT`] (so no deadline overflows).
    fn resolved(mut self) -> Self {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        self.max_connections = self.max_connections.max(1);
        for limit in [
            &mut self.header_read_timeout,
            &mut self.idle_timeout,
            &mut self.write_timeout,
            &mut self.max_connection_age,
        ] {
            *limit = (*limit).min(LONGEST_LIMIT);
        }
        let wanted = self.max_connections.saturating_add(FD_RESERVE) as u64;
        let limit = getrlimit(Resource::Nofile);
        let mut soft = limit.current.unwrap_or(u64::MAX);
        if soft < wanted {
            let raised = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
            if raised > soft
                && setrlimit(
                    Resource::Nofile,
                    Rlimit {
                        current: Some(raised),
                        maximum: limit.maximum,
                    },
                )
                .is_ok()
            {
                tracing::debug!(from = soft, to = raised, "raised the open file limit");
                soft = raised;
            }
        }
        let soft = usize::try_from(soft).unwrap_or(usize::MAX);
        let fd_cap = if soft >= 2 * FD_RESERVE {
            soft - FD_RESERVE
        } else {
            (soft / 2).max(1)
        };
        if fd_cap < self.max_connections {
            tracing::debug!(
                cap = fd_cap,
                "connection cap lowered to fit the open file limit"
            );
            self.max_connections = fd_cap;
        }
        self.max_active_connections = self.max_active_connections.min(self.max_connections).max(1);
        self
    }

    /// The name of a duration that is zero, if any: with it no client could be served.
    pub(crate) fn zero_duration(&self) -> Option<&'static str> {
        [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
            ("max_connection_age", self.max_connection_age),
        ]
        .into_iter()
        .find_map(|(name, limit)| limit.is_zero().then_some(name))
    }

    /// How often an active connection checks its limits.
    fn tick(&self) -> Duration {
        self.header_read_timeout
            .min(self.write_timeout)
            .min(self.idle_timeout)
            .min(PARK_AFTER)
            .checked_div(4)
            .unwrap_or_default()
            .clamp(Duration::from_millis(10), Duration::from_millis(250))
    }
}

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Waiting for a request (or for the first one): no byte of it yet.
    Idle = 0,
    /// Some bytes of a request head received.
    Head = 1,
    /// A request being answered (the handler is running).
    Serving = 2,
    /// An answer being written.
    Writing = 3,
    /// An answer that the socket does not take: the client does not read.
    Blocked = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Head,
            2 => Self::Serving,
            3 => Self::Writing,
            4 => Self::Blocked,
            _ => Self::Idle,
        }
    }

    /// Which connections go first when room is needed: the idle, then the rest, a request
    /// being answered last.
    fn eviction_class(self) -> u8 {
        match self {
            Self::Idle => 0,
            Self::Head | Self::Writing | Self::Blocked => 1,
            Self::Serving => 2,
        }
    }
}

/// One connection, as the registry and its task see it.
struct Conn {
    phase: AtomicU8,
    /// When the current phase began (microseconds since the registry's epoch).
    since: AtomicU64,
    /// Holds hyper's state (counted against `max_active_connections`).
    active: AtomicBool,
    /// Closed to make room (counted out of `open` and `active` by the evictor).
    evicted: AtomicBool,
    /// Its task has ended.
    closed: AtomicBool,
    evict: Notify,
    epoch: Instant,
}

impl Conn {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn set(&self, phase: Phase) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    /// How long the current phase has lasted.
    fn elapsed(&self) -> Duration {
        Duration::from_micros(
            self.now()
                .saturating_sub(self.since.load(Ordering::Relaxed)),
        )
    }

    fn rank(&self) -> (u8, u64) {
        (
            self.phase().eviction_class(),
            self.since.load(Ordering::Relaxed),
        )
    }

    fn on_read(&self) {
        if self.phase() == Phase::Idle {
            self.set(Phase::Head);
        }
    }

    fn on_write(&self, wrote: bool) {
        match (self.phase(), wrote) {
            (Phase::Serving, _) | (Phase::Blocked, false) => {}
            (_, true) => self.set(Phase::Writing),
            (_, false) => self.set(Phase::Blocked),
        }
    }

    fn on_flushed(&self) {
        if matches!(self.phase(), Phase::Writing | Phase::Blocked) {
            self.set(Phase::Idle);
        }
    }
}

/// Every open connection, and the counts the caps apply to.
pub(crate) struct Registry {
    conns: Mutex<Vec<Arc<Conn>>>,
    /// Open connections not evicted.
    open: AtomicUsize,
    /// Connections holding hyper's state, not evicted.
    active: AtomicUsize,
    limits: ConnectionLimits,
    epoch: Instant,
    /// The last "limit reached" warning, and how many evictions since.
    warned: Mutex<Option<Instant>>,
    evictions: AtomicU64,
}

/// Which cap an eviction makes room under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cap {
    Open,
    Active,
}

impl Registry {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            conns: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            limits,
            epoch: Instant::now(),
            warned: Mutex::new(None),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection, idle since now; the idlest others closed when over the cap.
    fn register(self: &Arc<Self>) -> Guard {
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(Phase::Idle as u8),
            since: AtomicU64::new(0),
            active: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            evict: Notify::new(),
            epoch: self.epoch,
        });
        conn.set(Phase::Idle);
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut conns = self.lock();
            if conns.len() > 2 * open + 64 {
                conns.retain(|c| !c.closed.load(Ordering::Relaxed));
            }
            conns.push(conn.clone());
        }
        if open > self.limits.max_connections {
            self.make_room(Cap::Open, Some(&conn), 0);
        }
        Guard {
            registry: self.clone(),
            conn,
        }
    }

    /// `conn` takes up hyper's state; the idlest active others closed when over the cap.
    fn activate(&self, conn: &Arc<Conn>) {
        if !conn.active.swap(true, Ordering::Relaxed) {
            let active = self.active.fetch_add(1, Ordering::Relaxed) + 1;
            if active > self.limits.max_active_connections {
                self.make_room(Cap::Active, Some(conn), 0);
            }
        }
    }

    fn deactivate(&self, conn: &Conn) {
        if conn.active.swap(false, Ordering::Relaxed) {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Close connections (never `keep`) until `cap` is respected with a little room to
    /// spare (a batch, so a flood does not rescan on every connection), plus `extra` more;
    /// the idle first, then those whose current phase began first (under the active cap, an
    /// idle one is not closed but gives its HTTP state back). Returns how many.
    fn make_room(&self, cap: Cap, keep: Option<&Arc<Conn>>, extra: usize) -> usize {
        let limit = match cap {
            Cap::Open => self.limits.max_connections,
            Cap::Active => self.limits.max_active_connections,
        };
        let mut candidates = Vec::new();
        let counted = {
            let mut conns = self.lock();
            conns.retain(|c| !c.closed.load(Ordering::Relaxed));
            let mut counted = 0usize;
            for c in conns.iter() {
                if c.evicted.load(Ordering::Relaxed)
                    || (cap == Cap::Active && !c.active.load(Ordering::Relaxed))
                {
                    continue;
                }
                counted += 1;
                if keep.is_none_or(|keep| !Arc::ptr_eq(c, keep)) {
                    candidates.push((c.rank(), c.clone()));
                }
            }
            counted
        };
        let over = counted.saturating_sub(limit);
        if over == 0 && extra == 0 {
            return 0;
        }
        let batch = if over > 0 { over + limit / 32 } else { 0 } + extra;
        let n = batch.min(candidates.len());
        if n == 0 {
            return 0;
        }
        if n < candidates.len() {
            candidates.select_nth_unstable_by_key(n - 1, |(rank, _)| *rank);
        }
        let mut closed = 0;
        for (_, victim) in candidates.iter().take(n) {
            if cap == Cap::Active && victim.phase() == Phase::Idle {
                // Idle between requests: it gives its HTTP state back and stays open.
                self.deactivate(victim);
                victim.evict.notify_one();
            } else {
                self.evict(victim);
                closed += 1;
            }
        }
        if closed > 0 {
            self.warn_evicted(cap, closed);
        }
        n
    }

    fn evict(&self, victim: &Conn) {
        if !victim.evicted.swap(true, Ordering::Relaxed) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.deactivate(victim);
            victim.evict.notify_one();
        }
    }

    fn warn_evicted(&self, cap: Cap, n: usize) {
        let total = self.evictions.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if self.may_warn() {
            let (what, limit) = match cap {
                Cap::Open => ("open connections", self.limits.max_connections),
                Cap::Active => (
                    "connections with a request in progress",
                    self.limits.max_active_connections,
                ),
            };
            tracing::warn!(
                limit,
                closed_since_start = total,
                "too many {what}: closing the idlest to serve new clients"
            );
        }
    }

    /// Whether a rate-limited warning may be logged now (and note that it is).
    fn may_warn(&self) -> bool {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if warned.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            return false;
        }
        *warned = Some(now);
        true
    }
}

/// Counts a connection out when its task ends.
struct Guard {
    registry: Arc<Registry>,
    conn: Arc<Conn>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.conn.evicted.swap(true, Ordering::Relaxed) {
            self.registry.open.fetch_sub(1, Ordering::Relaxed);
        }
        self.registry.deactivate(&self.conn);
        self.conn.closed.store(true, Ordering::Relaxed);
    }
}

/// A client socket that tells its [`Conn`] what it does: bytes read, bytes written, a write
/// the socket did not take, a completed flush.
struct Tracked {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.on_read();
        }
        result
    }
}

impl Tracked {
    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(n)) => self.conn.on_write(*n > 0),
            Poll::Pending => self.conn.on_write(false),
            Poll::Ready(Err(_)) => {}
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.conn.on_flushed();
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The listen backlog: room for a burst of new clients while accept catches up (the kernel
/// caps it at `net.core.somaxconn`, 4096 by default).
const BACKLOG: u32 = 4096;
/// The kernel's send and receive buffers of a client socket (the kernel doubles it). The
/// receive buffer holds about 4 KiB of a client's bytes (4,096 to 6,680 measured on Linux
/// 6.18, however they arrive), then the client's side waits until the server reads: a head
/// that does not fit never arrives whole while it is only peeked ([`PEEK_LIMIT`]).
const SOCKET_BUFFER: u32 = 4 * 1024;
/// The most of a request head a waiting connection peeks at: a head not whole at this length
/// is handed to hyper, which reads it (at most [`MAX_REQUEST_HEAD`], then 431) and so makes
/// room for the rest. Well below what the receive buffer holds (see [`SOCKET_BUFFER`]) and
/// well above an SDK's request (a few hundred bytes), so a slow head still waits on the bare
/// socket.
const PEEK_LIMIT: usize = SOCKET_BUFFER as usize / 4;
/// How long a connection whose head hyper refused (431 when too large, 400 when malformed)
/// reads and drops what the client still sends before closing ([`linger`]).
const LINGER: Duration = Duration::from_secs(1);
/// How many bytes it reads and drops at most.
const LINGER_BYTES: usize = 256 * 1024;

/// A listener on `addr` with a backlog of [`BACKLOG`] (tokio's `bind` uses 1024), reusing the
/// address as `bind` does.
pub(crate) fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    // Accepted sockets inherit these: an answer is a few KiB, so small kernel buffers cost a
    // client nothing, and bound what a client that pipelines without reading makes the server
    // do (and the kernel hold) before its writes block. A longer request head is read out of
    // the receive buffer by hyper (see `PEEK_LIMIT`).
    socket.set_send_buffer_size(SOCKET_BUFFER)?;
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accept clients until the task is aborted, each served by a task of its own that ends
/// with the connection, at a limit, on eviction or when `shutdown` turns true.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: watch::Receiver<bool>,
    limits: ConnectionLimits,
) {
    let limits = limits.resolved();
    let registry = Arc::new(Registry::new(limits));
    let mut http = http1::Builder::new();
    // The header limit is enforced below (hyper's own starts when a connection goes idle).
    http.header_read_timeout(None)
        .max_buf_size(MAX_REQUEST_HEAD);
    let http = Arc::new(http);
    let mut out_of_fds_warned: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let guard = registry.register();
                tokio::spawn(serve(
                    stream,
                    guard,
                    state.clone(),
                    http.clone(),
                    shutdown.clone(),
                ));
            }
            // The client gave up before it was accepted: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of descriptors or memory: close the idlest connections, and wait a
                // little (the pending client stays in the backlog, so retrying at once
                // would spin).
                let freed = registry.make_room(Cap::Open, None, 16);
                let now = Instant::now();
                if out_of_fds_warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
                    out_of_fds_warned = Some(now);
                    tracing::warn!(error = %e, closed = freed, "accept failed: closing the idlest connections and retrying");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Accept errors about one client, not about the server.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// What the bytes waiting on a parked connection hold.
enum Waiting {
    /// A whole request head, or [`PEEK_LIMIT`] bytes of one: hyper reads and answers it.
    Head,
    /// Part of one, shorter than [`PEEK_LIMIT`]: wait for more.
    Partial,
    /// The end of the stream, or an error: the client is gone.
    Gone,
}

/// Look at the bytes waiting on `stream` (at most [`PEEK_LIMIT`]) without taking them. When
/// they are not a whole head yet, the socket's readiness is cleared (unless more arrived
/// meanwhile), so the next `readable()` waits for more.
fn peek_head(stream: &TcpStream) -> Waiting {
    use rustix::net::{RecvFlags, recv};
    let mut buf = [0u8; PEEK_LIMIT];
    let peeked = stream.try_io(tokio::io::Interest::READABLE, || {
        let (n, _) = recv(stream, &mut buf[..], RecvFlags::PEEK | RecvFlags::DONTWAIT)?;
        let bytes = &buf[..n];
        if n == 0 {
            Ok(Waiting::Gone)
        } else if n == PEEK_LIMIT
            || bytes.windows(4).any(|w| w == b"\r\n\r\n")
            || bytes.windows(2).any(|w| w == b"\n\n")
        {
            // A head this long may not fit in the kernel's buffer: hyper reads the rest.
            Ok(Waiting::Head)
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        }
    });
    match peeked {
        Ok(waiting) => waiting,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Waiting::Partial,
        Err(_) => Waiting::Gone,
    }
}

/// After hyper answered a head it refused and shut its side: read and drop what the client
/// still sends (the rest of a head too large, say) until it closes, for at most [`LINGER`] and
/// [`LINGER_BYTES`], then close. Closing with bytes unread would reset the connection, and a
/// client still sending would see the reset, not the answer.
async fn linger(stream: TcpStream, conn: &Conn, shutdown: &mut watch::Receiver<bool>) {
    let deadline = Instant::now() + LINGER;
    let mut left = LINGER_BYTES;
    while left > 0 {
        tokio::select! {
            biased;
            _ = conn.evict.notified() => if conn.evicted.load(Ordering::Relaxed) { return },
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep_until(deadline) => return,
            ready = stream.readable() => if ready.is_err() { return },
        }
        // On the stack, not in the task: nothing is kept between reads.
        let mut sink = [0u8; 4096];
        match stream.try_read(&mut sink) {
            Ok(0) => return,
            Ok(n) => left = left.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Serve one client until it closes, a limit is reached, it is evicted, or the server stops.
async fn serve(
    mut stream: TcpStream,
    guard: Guard,
    state: Arc<State>,
    http: Arc<http1::Builder>,
    mut shutdown: watch::Receiver<bool>,
) {
    let registry = guard.registry.clone();
    let conn = guard.conn.clone();
    let limits = registry.limits;
    let tick = limits.tick();
    let end_of_life = Instant::now() + limits.max_connection_age;
    let mut first = true;
    loop {
        // Parked: the bare socket, waiting until a whole request head has arrived (it stays
        // in the kernel's buffer until then). A new connection has the header limit to send
        // its first byte, a kept-alive one the idle limit; once a head has begun, the header
        // limit runs from its first byte.
        let mut wait = if first {
            limits.header_read_timeout
        } else {
            limits.idle_timeout
        };
        first = false;
        let mut read_closed;
        loop {
            let deadline = (Instant::now() + wait.saturating_sub(conn.elapsed())).min(end_of_life);
            tokio::select! {
                biased;
                // Closed to make room (a request to park is moot here).
                _ = conn.evict.notified() => if conn.evicted.load(Ordering::Relaxed) { return } else { continue },
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep_until(deadline) => return,
                ready = stream.ready(tokio::io::Interest::READABLE) => match ready {
                    Ok(ready) => read_closed = ready.is_read_closed(),
                    Err(_) => return,
                },
            }
            match peek_head(&stream) {
                Waiting::Gone => return,
                Waiting::Head => break,
                // The client sent part of a head and then closed its side: it can never
                // finish it, and its socket stays readable (spinning this loop) until closed.
                Waiting::Partial if read_closed => return,
                Waiting::Partial => {
                    if conn.phase() == Phase::Idle {
                        conn.set(Phase::Head);
                        wait = limits.header_read_timeout;
                    }
                }
            }
        }
        if conn.evicted.load(Ordering::Relaxed) {
            return;
        }
        // A whole head is there (marked before taking a place among the active, so the
        // eviction that makes room does not pick this one as idle).
        if conn.phase() == Phase::Idle {
            conn.set(Phase::Head);
        }
        registry.activate(&conn);
        let service = {
            let (state, conn) = (state.clone(), conn.clone());
            service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (state, conn) = (state.clone(), conn.clone());
                conn.set(Phase::Serving);
                async move {
                    let (parts, _body) = request.into_parts();
                    let response = state
                        .handle(&parts.method, &parts.uri, &parts.headers)
                        .await;
                    conn.set(Phase::Writing);
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let io = TokioIo::new(Tracked {
            stream,
            conn: conn.clone(),
        });
        // Boxed: a parked connection's task keeps no room for hyper's state.
        let mut http_conn = Box::new(http.serve_connection(io, service));
        let mut timer = Box::pin(tokio::time::sleep(tick));
        let mut closing_by: Option<Instant> = None;
        let mut refused = false;
        loop {
            tokio::select! {
                biased;
                _ = conn.evict.notified() => {
                    if conn.evicted.load(Ordering::Relaxed) {
                        return;
                    }
                    // Asked to give its HTTP state back to make room: at once when idle.
                    if conn.phase() == Phase::Idle {
                        break;
                    }
                    registry.activate(&conn);
                    continue;
                }
                _ = shutdown.wait_for(|stop| *stop) => return,
                done = Pin::new(&mut *http_conn) => {
                    // A head hyper refused (431 when too large, 400 when malformed): its answer
                    // is written and its side shut.
                    refused = done.is_err_and(|e| e.is_parse());
                    if refused { break } else { return }
                }
                _ = timer.as_mut() => {}
            }
            let (phase, elapsed) = (conn.phase(), conn.elapsed());
            let now = Instant::now();
            match phase {
                Phase::Head if elapsed >= limits.header_read_timeout => return,
                Phase::Blocked if elapsed >= limits.write_timeout => return,
                Phase::Idle if now >= end_of_life => return,
                Phase::Idle if elapsed >= PARK_AFTER => break,
                _ => {}
            }
            if now >= end_of_life {
                // Finish the answer in progress with `Connection: close`, then end.
                match closing_by {
                    None => {
                        Pin::new(&mut *http_conn).graceful_shutdown();
                        closing_by = Some(now + limits.write_timeout);
                    }
                    Some(by) if now >= by => return,
                    Some(_) => {}
                }
            }
            timer.as_mut().reset(now + tick);
        }
        registry.deactivate(&conn);
        let parts = http_conn.into_parts();
        if refused {
            // Let a client still sending read the refusal.
            linger(parts.io.into_inner().stream, &conn, &mut shutdown).await;
            return;
        }
        if !parts.read_buf.is_empty() {
            // Part of a pipelined request that stalled: not worth keeping.
            return;
        }
        stream = parts.io.into_inner().stream;
    }
}
