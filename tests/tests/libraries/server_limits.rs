//! The credential server's connection limits over real sockets, each at its bound: the idle,
//! header, write and total-life limits, the connection cap (the idlest closed to serve a new
//! client), the cap on connections with a request in progress, keep-alive reuse across the
//! point where an idle connection gives its HTTP state back, request heads up to 16 KiB
//! answered however they arrive and longer ones refused with 431, and a refused method's answer
//! carrying `Metadata-Flavor: Google`. The flood (10,000 connections, boto3) runs the binary:
//! `crates/fly-oidc-cli/tests/cli/server_flood.rs`.
#![allow(clippy::unwrap_used)] // tests unwrap what they control

use fly_oidc_server::{ConnectionLimits, ErrorKind, Server};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server with no credential (`/` answers) and the default limits as `change` leaves them.
async fn server(change: impl FnOnce(&mut ConnectionLimits)) -> Server {
    let mut limits = ConnectionLimits::default();
    change(&mut limits);
    Server::builder()
        .connection_limits(limits)
        .start()
        .await
        .unwrap()
}

fn request(addr: SocketAddr) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes()
}

/// One answer read from `stream` (its head, lowercase), or `None` at the end of the stream.
async fn answer(stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => raw.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8(raw).unwrap().to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head)
}

/// The next answer on `stream` (its head, lowercase), which must come within 5 s; else a panic
/// naming `what`.
async fn answered(stream: &mut (impl AsyncRead + Unpin), what: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), answer(stream))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 5 s"))
        .unwrap_or_else(|| panic!("{what}: the connection was closed"))
}

/// A GET / on `stream`, which must be answered 200.
async fn served(stream: &mut TcpStream, addr: SocketAddr) -> String {
    stream.write_all(&request(addr)).await.unwrap();
    let head = answered(stream, "GET /").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    head
}

/// Whether `stream` is still open: nothing to read for 50 ms.
async fn still_open(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte))
        .await
        .is_err()
}

/// A new connection to `addr` is served (the server still takes clients).
async fn serves_a_new_client(addr: SocketAddr) {
    let mut good = TcpStream::connect(addr).await.unwrap();
    served(&mut good, addr).await;
}

/// How long until the server closes `stream` (reading and dropping whatever it sends); at
/// most `within`, else a panic naming `what`.
async fn closed_after(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
    what: &str,
) -> Duration {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: still open after {within:?}");
    started.elapsed()
}

/// Limits at the edges of their types are taken as the longest and fewest the server keeps
/// (a day; one connection): no deadline overflows, and every client is still served. A zero
/// duration, with which no client could be, is refused at start, naming the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_at_the_edges_of_their_types_serve_without_a_panic() {
    type Edit = fn(&mut ConnectionLimits);
    let zero: [(&str, Edit); 4] = [
        ("header_read_timeout", |l| {
            l.header_read_timeout = Duration::ZERO
        }),
        ("idle_timeout", |l| l.idle_timeout = Duration::ZERO),
        ("write_timeout", |l| l.write_timeout = Duration::ZERO),
        ("max_connection_age", |l| {
            l.max_connection_age = Duration::ZERO
        }),
    ];
    for (name, edit) in zero {
        let mut limits = ConnectionLimits::default();
        edit(&mut limits);
        let err = Server::builder()
            .connection_limits(limits)
            .start()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSetting, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("connection limit {name} is zero")),
            "{err}"
        );
    }
    for (count, time) in [(usize::MAX, Duration::MAX), (0, Duration::from_secs(5))] {
        let server = server(|l| {
            l.max_connections = count;
            l.max_active_connections = count;
            l.header_read_timeout = time;
            l.idle_timeout = time;
            l.write_timeout = time;
            l.max_connection_age = time;
        })
        .await;
        let addr = server.local_addr();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            served(&mut stream, addr).await;
        }
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_is_reused_across_pauses_and_closed_at_the_idle_limit() {
    let server = server(|l| l.idle_timeout = Duration::from_millis(2500)).await;
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    served(&mut stream, addr).await;
    // A short pause, then a pause past the point where the connection gives hyper's state
    // back (1 s): the same connection answers both times.
    tokio::time::sleep(Duration::from_millis(200)).await;
    served(&mut stream, addr).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    served(&mut stream, addr).await;
    let idle = closed_after(&mut stream, Duration::from_secs(6), "an idle connection").await;
    assert!(
        idle >= Duration::from_millis(2000) && idle < Duration::from_millis(4000),
        "closed after {idle:?} idle, the limit is 2.5 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_must_send_and_a_head_must_end_within_the_header_limit() {
    let server = server(|l| l.header_read_timeout = Duration::from_millis(600)).await;
    let addr = server.local_addr();
    // Silent after connecting.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let waited = closed_after(&mut silent, Duration::from_secs(5), "a silent connection").await;
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    // A head sent a byte every 100 ms: progress does not extend the limit.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let head =
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in head {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cut = started.elapsed();
    assert!(
        cut < Duration::from_millis(2500),
        "a trickled head kept the connection {cut:?}"
    );
    closed_after(&mut slow, Duration::from_secs(3), "a trickled head").await;
    // A client that sends at once is served.
    serves_a_new_client(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pipelines_and_never_reads_is_cut_off_at_the_write_limit() {
    let server = server(|l| l.write_timeout = Duration::from_millis(700)).await;
    let addr = server.local_addr();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let batch = request(addr).repeat(256);
    let started = Instant::now();
    // Pipeline until the server stops taking requests (its answers fill both buffers), then
    // until it gives up on us: the write fails (reset) when it closes.
    let cut = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if stream.write_all(&batch).await.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        cut.is_ok(),
        "a client that never reads kept its connection for 15 s"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Others are served meanwhile and after.
    serves_a_new_client(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_connection_ends_at_its_total_life() {
    let server = server(|l| l.max_connection_age = Duration::from_millis(1200)).await;
    let addr = server.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut answers = 0;
    // A request every 100 ms: never idle long, so only the total life ends it, between two
    // answers (with `Connection: close` on the last when it was being answered).
    while started.elapsed() < Duration::from_secs(6) {
        if stream.write_all(&request(addr)).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(3), answer(&mut stream)).await {
            Ok(Some(head)) => {
                assert!(head.starts_with("http/1.1 200"), "{head}");
                answers += 1;
                if head.contains("connection: close") {
                    break;
                }
            }
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let life = started.elapsed();
    assert!(
        life >= Duration::from_millis(1000) && life < Duration::from_secs(4),
        "the connection lived {life:?} (limit 1.2 s), {answers} answers"
    );
    assert!(answers >= 5, "{answers} answers");
    closed_after(
        &mut stream,
        Duration::from_secs(2),
        "at the end of its life",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_client_is_served_and_the_idlest_connection_closed() {
    let server = server(|l| l.max_connections = 4).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        served(&mut stream, addr).await;
        held.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The fifth: served at once, not left in the backlog.
    let started = Instant::now();
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    served(&mut fifth, addr).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    // The one idle the longest made room; the others still work.
    closed_after(
        &mut held[0],
        Duration::from_secs(2),
        "the idlest connection",
    )
    .await;
    for stream in &mut held[2..] {
        served(stream, addr).await;
    }
}

/// Four connections to `addr` that each send `partial` (a head that never ends), one after the
/// other.
async fn stalled_heads(addr: SocketAddr, partial: &[u8]) -> Vec<TcpStream> {
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(partial).await.unwrap();
        stalled.push(stream);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stalled
}

/// A client that pipelines requests and never reads (a small receive buffer, so the server's
/// answers back up at once); the task ends when the server closes the connection.
async fn pipeliner(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let batch = request(addr).repeat(256);
    tokio::spawn(async move { while stream.write_all(&batch).await.is_ok() {} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_active_cap_a_new_request_is_served_and_a_non_reader_closed() {
    let server = server(|l| {
        l.max_active_connections = 2;
        l.write_timeout = Duration::from_secs(30);
        l.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = server.local_addr();
    // Heads that never end wait on the bare socket: they take no place among the active.
    let mut stalled = stalled_heads(addr, b"GET / HTTP/1.1\r\nHost: ").await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    served(&mut first, addr).await;
    // Two clients that never read hold both places.
    let a = pipeliner(addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = pipeliner(addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new request is served, and the first non-reader made room.
    serves_a_new_client(addr).await;
    tokio::time::timeout(Duration::from_secs(3), a)
        .await
        .expect("the oldest non-reader still open")
        .unwrap();
    assert!(!b.is_finished(), "the newer non-reader was closed");
    b.abort();
    // The stalled heads are still open (the header limit is 30 s here).
    for stream in &mut stalled {
        assert!(still_open(stream).await, "a stalled head was closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_method_on_the_metadata_endpoint_carries_metadata_flavor() {
    // What the fuzz target found: a method `%` is answered 405 without the header that every
    // answer of Google's metadata server carries.
    let server = server(|_| {}).await;
    let addr = server.local_addr();
    for method in ["%", "POST"] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!(
                    "{method} /computeMetadata/v1/instance/ HTTP/1.1\r\nHost: {addr}\r\nMetadata-Flavor: Google\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let head = answer(&mut stream).await.unwrap();
        assert!(head.starts_with("http/1.1 405"), "{head}");
        assert!(head.contains("metadata-flavor: google"), "{head}");
    }
}

/// A client that sends part of a request head and then closes its side can never finish it:
/// its connection is closed at once (its socket stays readable, and a server that only waited
/// for more of the head spun on it, starving its own timers), and other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_cut_short_by_the_clients_close_is_dropped_at_once() {
    // A header limit far above what the test waits: only the close can end these.
    let server = server(|l| l.header_read_timeout = Duration::from_secs(30)).await;
    let addr = server.local_addr();
    let mut halves = Vec::new();
    for _ in 0..20 {
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nHost: 127")
            .await
            .unwrap();
        half.shutdown().await.unwrap();
        halves.push(half);
    }
    for mut half in halves {
        let waited = closed_after(&mut half, Duration::from_secs(3), "a half-closed head").await;
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
    let mut good = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), served(&mut good, addr))
        .await
        .expect("a client served while half-closed heads were pending");
}

/// The server never reads a request body: a request that announces one (a gigabyte, or chunks)
/// and never sends it is answered at once, from its head alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_from_its_head_without_waiting_for_its_body() {
    let server = server(|l| l.header_read_timeout = Duration::from_secs(30)).await;
    let addr = server.local_addr();
    for framing in ["Content-Length: 1073741824", "Transfer-Encoding: chunked"] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{framing}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = tokio::time::timeout(Duration::from_secs(5), answer(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("{framing}: no answer without the body"))
            .expect("the connection was closed before an answer");
        assert!(head.starts_with("http/1.1 200"), "{framing}: {head}");
    }
}

/// A `GET /` whose head is `len` bytes in all (an `X-Pad` header makes up the length).
fn head_of(addr: SocketAddr, len: usize) -> Vec<u8> {
    let start = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Pad: ");
    let pad = len - start.len() - "\r\n\r\n".len();
    format!("{start}{}\r\n\r\n", "a".repeat(pad)).into_bytes()
}

/// Send `bytes` in one write, or in 500-byte pieces 20 ms apart.
async fn send_head(
    stream: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
    pieces: bool,
) -> std::io::Result<()> {
    if !pieces {
        return stream.write_all(bytes).await;
    }
    for piece in bytes.chunks(500) {
        stream.write_all(piece).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// What a black-box attack found: the kernel's receive buffer of a client socket is small
/// (about 4 KiB), and the server only peeked at a head until it was whole, so a head longer
/// than the buffer never arrived and the client was reset at the header limit without an
/// answer. Every head up to 16 KiB is answered, sent at once or in pieces, on a new connection
/// and on one that waited past the point where it gives its HTTP state back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_up_to_16_kib_are_answered_sent_at_once_or_in_pieces() {
    let server = server(|_| {}).await;
    let addr = server.local_addr();
    for len in [4 * 1024, 8 * 1024, 15 * 1024 + 900] {
        for pieces in [false, true] {
            let what = format!(
                "a head of {len} bytes sent in {}",
                if pieces { "pieces" } else { "one write" }
            );
            let mut stream = TcpStream::connect(addr).await.unwrap();
            send_head(&mut stream, &head_of(addr, len), pieces)
                .await
                .unwrap();
            let head = answered(&mut stream, &what).await;
            assert!(head.starts_with("http/1.1 200"), "{what}: {head}");
            if len > 15 * 1024 && pieces {
                // Kept alive past the point where it waits on the bare socket again.
                tokio::time::sleep(Duration::from_millis(1200)).await;
                send_head(&mut stream, &head_of(addr, len), pieces)
                    .await
                    .unwrap();
                let again = answered(&mut stream, &format!("{what}, again")).await;
                assert!(again.starts_with("http/1.1 200"), "{what}, again: {again}");
            }
        }
    }
}

/// A head over 16 KiB is answered 431 and the connection closed, whether the client is still
/// sending (the server reads and drops the rest for a moment, so the client sees the answer,
/// not a reset) or not; nothing of it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_16_kib_is_answered_431_and_the_connection_closed() {
    let server = server(|_| {}).await;
    let addr = server.local_addr();
    for (len, pieces) in [(17 * 1024, false), (64 * 1024, false), (17 * 1024, true)] {
        let what = format!(
            "a head of {len} bytes sent in {}",
            if pieces { "pieces" } else { "one write" }
        );
        let (mut read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
        let bytes = head_of(addr, len);
        let writer = tokio::spawn(async move { send_head(&mut write, &bytes, pieces).await });
        let head = answered(&mut read, &what).await;
        assert!(head.starts_with("http/1.1 431"), "{what}: {head}");
        assert!(head.contains("connection: close"), "{what}: {head}");
        closed_after(&mut read, Duration::from_secs(3), &what).await;
        let sent = writer.await.unwrap();
        if !pieces {
            // Sent whole: the server did not reset the client while it was sending.
            sent.unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
    serves_a_new_client(addr).await;
}

/// A head too long to wait for on the bare socket is read by hyper, so it holds HTTP state:
/// such heads, stalled, are among the connections with a request in progress, and at that cap
/// the oldest is closed to serve a new request. Memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_stalled_heads_count_among_the_active_and_make_room_for_a_new_request() {
    let server = server(|l| {
        l.max_active_connections = 2;
        l.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = server.local_addr();
    let head = head_of(addr, 3000);
    // Without its end: it never finishes.
    let mut stalled = stalled_heads(addr, &head[..head.len() - 4]).await;
    serves_a_new_client(addr).await;
    // Four long heads and a request over a cap of two: the three oldest heads were closed.
    for (i, stream) in stalled.iter_mut().take(3).enumerate() {
        closed_after(stream, Duration::from_secs(3), &format!("stalled head {i}")).await;
    }
    assert!(
        still_open(&mut stalled[3]).await,
        "the newest stalled head was closed"
    );
}
