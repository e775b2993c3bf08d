//! The one server harness every fake runs on: a thread of its own with a current-thread
//! runtime (so the fakes answer while a test blocks on a child process), HTTP/1 on
//! `127.0.0.1` and optionally on a Unix socket, shutdown when the last handle is dropped;
//! the response bodies (whole or cut off), the clock, the request log, and the answers to
//! the faults every fake writes alike.

use crate::fault::Fault;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{oneshot, watch};

/// Lock a fake's state; a panicked holder (a failed test thread) does not poison it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fake's clock: the system clock, or the one a test injected with a builder's `clock`.
#[derive(Clone, Default)]
pub(crate) struct Clock(Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(injected)"
        } else {
            "Clock(system)"
        })
    }
}

impl Clock {
    /// A clock reading `now`.
    pub(crate) fn new(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Clock(Some(Arc::new(now)))
    }

    /// The current time.
    pub(crate) fn now(&self) -> SystemTime {
        match &self.0 {
            Some(now) => now(),
            #[allow(clippy::disallowed_methods)] // the fakes' default clock, like the services'
            None => SystemTime::now(),
        }
    }
}

/// The requests a fake received: a count taken as each arrives (before any fault or delay),
/// and the records, in order.
#[derive(Debug)]
pub(crate) struct RequestLog<R> {
    arrived: AtomicUsize,
    records: Mutex<Vec<R>>,
}

impl<R> Default for RequestLog<R> {
    fn default() -> Self {
        Self {
            arrived: AtomicUsize::new(0),
            records: Mutex::new(Vec::new()),
        }
    }
}

impl<R: Clone> RequestLog<R> {
    /// Count a request as it arrives.
    pub(crate) fn arrive(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
    }

    /// How many requests arrived.
    pub(crate) fn count(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Keep what a request carried.
    pub(crate) fn record(&self, request: R) {
        lock(&self.records).push(request);
    }

    /// The records, in order.
    pub(crate) fn records(&self) -> Vec<R> {
        lock(&self.records).clone()
    }
}

/// A response body: whole, or cut off mid-way (for [`Fault::Reset`]).
pub(crate) enum TestBody {
    Full(Full<Bytes>),
    Cut(Option<Bytes>),
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            TestBody::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            TestBody::Cut(first) => match first.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fault: connection reset",
                )))),
            },
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            TestBody::Full(full) => full.size_hint(),
            TestBody::Cut(_) => hyper::body::SizeHint::with_exact(4096),
        }
    }
}

/// A whole response with this status, content type and body.
pub(crate) fn respond(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<TestBody> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .body(TestBody::Full(Full::new(body.into())))
        .unwrap_or_else(|_| Response::new(TestBody::Full(Full::new(Bytes::new()))))
}

/// How a fake writes the faults every fake answers alike.
pub(crate) struct Wire {
    /// The content type of [`Fault::Status`] answers.
    pub error_type: &'static str,
    /// The content type of the 200 answers of [`Fault::Oversized`] and [`Fault::Reset`].
    pub body_type: &'static str,
    /// The content type and 200 body of [`Fault::Malformed`].
    pub malformed: (&'static str, &'static str),
    /// What [`Fault::Reset`] sends of the body before it drops the connection.
    pub reset_prefix: &'static [u8],
}

impl Wire {
    /// The answer to `fault` for the faults every fake writes alike ([`Fault::Status`],
    /// [`Fault::Malformed`], [`Fault::Oversized`], [`Fault::Reset`]); `None` after waiting
    /// out a [`Fault::Delay`] (answer normally), and for the faults each fake writes in its
    /// own shape ([`Fault::Error`], [`Fault::Echo`]).
    pub(crate) async fn answer(&self, fault: &Fault) -> Option<Response<TestBody>> {
        match fault {
            Fault::Status(status, body) => Some(respond(*status, self.error_type, body.clone())),
            Fault::Malformed => Some(respond(200, self.malformed.0, self.malformed.1)),
            Fault::Oversized => Some(respond(200, self.body_type, "a".repeat(100 * 1024))),
            Fault::Reset => Some(
                Response::builder()
                    .status(200)
                    .header("content-type", self.body_type)
                    .body(TestBody::Cut(Some(Bytes::from_static(self.reset_prefix))))
                    .unwrap_or_else(|_| Response::new(TestBody::Cut(None))),
            ),
            Fault::Delay(delay) => {
                tokio::time::sleep(*delay).await;
                None
            }
            Fault::Error { .. } | Fault::Echo(_) => None,
        }
    }

    /// The answer to the fault queued for a request, if it has one that changes the answer:
    /// `error(status, code, message)` for [`Fault::Error`], `echo(status)` for [`Fault::Echo`]
    /// (each in the fake's own shape), else as [`answer`](Self::answer).
    pub(crate) async fn answer_fault(
        &self,
        fault: Option<Fault>,
        error: impl FnOnce(u16, &str, &str) -> Response<TestBody>,
        echo: impl FnOnce(u16) -> Response<TestBody>,
    ) -> Option<Response<TestBody>> {
        match fault? {
            Fault::Error {
                status,
                code,
                message,
            } => Some(error(status, &code, &message)),
            Fault::Echo(status) => Some(echo(status)),
            fault => self.answer(&fault).await,
        }
    }
}

/// Answers one request; the flag says whether it came over the Unix socket.
pub(crate) type Handler = Arc<
    dyn Fn(Request<Incoming>, bool) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
        + Send
        + Sync,
>;

/// Stops the server when the last clone is dropped, and removes its socket's temporary
/// directory then, in the dropping thread (not on the server's thread, which the end of the
/// process can cut short: that left `/tmp/fake-fly-*` directories behind).
#[derive(Clone)]
pub(crate) struct Shutdown {
    _stopper: Arc<Stopper>,
}

struct Stopper {
    stop: watch::Sender<bool>,
    /// Removed when dropped, after the server was told to stop.
    _socket_dir: Option<tempfile::TempDir>,
}

impl Drop for Stopper {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Where a started server listens; a fake's handle keeps it (and so the server running).
#[derive(Clone)]
pub(crate) struct Bound {
    /// The TCP address on 127.0.0.1.
    pub addr: SocketAddr,
    /// The Unix socket, when asked for (in a temporary directory removed at shutdown).
    pub socket_path: Option<PathBuf>,
    /// Keep it alive as long as the server should run.
    _shutdown: Shutdown,
}

impl Bound {
    /// The TCP base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Start a fake's server on its own thread (named `name`; also on a Unix socket when `unix`);
/// `setup` makes the fake's handle and request handler once it listens, and the handle is
/// returned then.
pub(crate) async fn start<T: Send + 'static>(
    name: &'static str,
    unix: bool,
    setup: impl FnOnce(Bound) -> (T, Handler) + Send + 'static,
) -> std::io::Result<T> {
    spawn(name, unix, setup)?
        .await
        .map_err(|_| std::io::Error::other(format!("the {name} thread died")))?
}

/// [`start`] from synchronous code.
pub(crate) fn start_blocking<T: Send + 'static>(
    name: &'static str,
    unix: bool,
    setup: impl FnOnce(Bound) -> (T, Handler) + Send + 'static,
) -> std::io::Result<T> {
    spawn(name, unix, setup)?
        .blocking_recv()
        .map_err(|_| std::io::Error::other(format!("the {name} thread died")))?
}

/// What every fake's builder says once, as `Builder => Fake, thread "name", unix socket
/// true|false, setup`: the handle it starts, its server thread's name, whether it also
/// serves on a Unix socket, and the function (`setup(builder, bound)`) that makes the handle
/// and the request handler. It gives the builder (which has a `clock: Clock` field) the
/// methods every fake shares: `clock` (with the doc comments written first: what the fake
/// reads it for), `start` and `start_blocking`.
macro_rules! builder_methods {
    (
        $(#[$clock_doc:meta])*
        $builder:ident => $fake:ident, thread $name:literal, unix socket $unix:literal, $setup:ident
    ) => {
        impl $builder {
            $(#[$clock_doc])*
            pub fn clock(
                mut self,
                clock: impl Fn() -> std::time::SystemTime + Send + Sync + 'static,
            ) -> Self {
                self.clock = $crate::server::Clock::new(clock);
                self
            }

            /// Start serving (from async code).
            pub async fn start(self) -> std::io::Result<$fake> {
                $crate::server::start($name, $unix, move |bound| $setup(self, bound)).await
            }

            /// Start serving (from synchronous code).
            pub fn start_blocking(self) -> std::io::Result<$fake> {
                $crate::server::start_blocking($name, $unix, move |bound| $setup(self, bound))
            }
        }
    };
}
pub(crate) use builder_methods;

/// Builder setters, each taking the builder by value and giving it back, with the doc
/// comments written before it: `name: (T)` sets the field `name` to any `impl Into<T>`,
/// `name: Some(T)` sets the `Option<T>` field `name` to `Some` of it.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $($wrap:ident)? ($ty:ty)),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                self.$field = $($wrap)?(value.into());
                self
            }
        )*
    };
}
pub(crate) use setters;

/// `Debug` for a struct that shows some of its fields, then `..` (the others are secrets,
/// closures or internals). With `|this|` naming the value, each entry is a field shown as it is
/// (`name`) or a name and what to show for it (`name: expression`).
macro_rules! debug_fields {
    (@show $this:ident $name:ident) => { &$this.$name };
    (@show $this:ident $name:ident $value:expr) => { &$value };
    ($ty:ident, |$this:ident| $($name:ident $(: $value:expr)?),+ $(,)?) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let $this = self;
                f.debug_struct(stringify!($ty))
                    $(.field(
                        stringify!($name),
                        $crate::server::debug_fields!(@show $this $name $($value)?),
                    ))+
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use debug_fields;

/// The request-log and fault methods of a fake whose state (`self.state`) has a
/// `requests: RequestLog<$record>` and a `faults: FaultQueue`: `requests`, `request_count`,
/// `fail_next` (`$fail_doc` says how the fake writes [`Fault::Error`] and [`Fault::Echo`]),
/// `script` and `clear_faults`.
macro_rules! request_methods {
    ($record:ty, $fail_doc:literal) => {
        /// The requests received, in order.
        pub fn requests(&self) -> Vec<$record> {
            self.state.requests.records()
        }

        /// How many requests were received (whatever the answer).
        pub fn request_count(&self) -> usize {
            self.state.requests.count()
        }

        /// Make the next `n` requests fail with `fault` (queued after earlier faults).
        #[doc = $fail_doc]
        pub fn fail_next(&self, n: usize, fault: $crate::Fault) {
            self.state.faults.push(n, fault);
        }

        /// Script the next requests: the i-th fault applies to the i-th next request.
        pub fn script(&self, faults: impl IntoIterator<Item = $crate::Fault>) {
            self.state.faults.script(faults);
        }

        /// Drop any queued faults.
        pub fn clear_faults(&self) {
            self.state.faults.clear();
        }
    };
}
pub(crate) use request_methods;

/// A [`Handler`] answering each request with `handle(request, over_unix_socket, state)`.
pub(crate) fn handler<S, F, Fut>(state: Arc<S>, handle: F) -> Handler
where
    S: Send + Sync + 'static,
    F: Fn(Request<Incoming>, bool, Arc<S>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    Arc::new(move |req, unix| Box::pin(handle(req, unix, state.clone())))
}

fn spawn<T: Send + 'static>(
    name: &'static str,
    unix: bool,
    setup: impl FnOnce(Bound) -> (T, Handler) + Send + 'static,
) -> std::io::Result<oneshot::Receiver<std::io::Result<T>>> {
    let (ready, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let bind = async {
                    let tcp = TcpListener::bind("127.0.0.1:0").await?;
                    let addr = tcp.local_addr()?;
                    let socket = if unix {
                        let dir = tempfile::Builder::new().prefix("fake-fly-").tempdir()?;
                        let path = dir.path().join("api.sock");
                        let listener = UnixListener::bind(&path)?;
                        Some((dir, path, listener))
                    } else {
                        None
                    };
                    Ok::<_, std::io::Error>((tcp, addr, socket))
                };
                let (tcp, addr, socket) = match bind.await {
                    Ok(bound) => bound,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let (stop, mut shutdown_rx) = watch::channel(false);
                let (socket_dir, socket_path, unix_listener) = match socket {
                    Some((dir, path, listener)) => (Some(dir), Some(path), Some(listener)),
                    None => (None, None, None),
                };
                let (handle, handler) = setup(Bound {
                    addr,
                    socket_path,
                    // The temporary directory lives (and the socket with it) until shutdown.
                    _shutdown: Shutdown {
                        _stopper: Arc::new(Stopper {
                            stop,
                            _socket_dir: socket_dir,
                        }),
                    },
                });
                if ready.send(Ok(handle)).is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        _ = shutdown_rx.changed() => break,
                        Ok((stream, _)) = tcp.accept() => {
                            tokio::spawn(serve(stream, handler.clone(), false));
                        }
                        Ok((stream, _)) = accept_unix(unix_listener.as_ref()) => {
                            tokio::spawn(serve(stream, handler.clone(), true));
                        }
                    }
                }
            });
        })?;
    Ok(rx)
}

async fn accept_unix(
    listener: Option<&UnixListener>,
) -> std::io::Result<(tokio::net::UnixStream, tokio::net::unix::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn serve<S>(stream: S, handler: Handler, unix: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let answer = handler(req, unix);
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
