//! The one HTTP server machinery every fake shares: a thread of its own with a
//! current-thread runtime (so the fakes answer while a test blocks on a child process),
//! HTTP/1 on `127.0.0.1` and optionally on a Unix socket, and shutdown when the last
//! handle is dropped.

use crate::fly_api::TestBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{oneshot, watch};

/// Answers one request; the flag says whether it came over the Unix socket.
pub(crate) type Handler = Arc<
    dyn Fn(Request<Incoming>, bool) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
        + Send
        + Sync,
>;

/// Stops the server when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Shutdown(Arc<watch::Sender<bool>>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            let _ = self.0.send(true);
        }
    }
}

/// Where a started server listens.
pub(crate) struct Bound {
    /// The TCP address on 127.0.0.1.
    pub addr: SocketAddr,
    /// The Unix socket, when asked for (in a temporary directory removed at shutdown).
    pub socket_path: Option<PathBuf>,
    /// Keep it alive as long as the server should run.
    pub shutdown: Shutdown,
}

/// Start a server on its own thread. `setup` turns where it listens into the fake's handle
/// and the request handler; the handle is returned once the server is listening.
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
                let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
                let (handle, handler) = setup(Bound {
                    addr,
                    socket_path: socket.as_ref().map(|(_, path, _)| path.clone()),
                    shutdown: Shutdown(Arc::new(shutdown_tx)),
                });
                if ready.send(Ok(handle)).is_err() {
                    return;
                }
                // The temporary directory lives (and the socket with it) until shutdown.
                let (_dir, unix_listener) = match socket {
                    Some((dir, _, listener)) => (Some(dir), Some(listener)),
                    None => (None, None),
                };
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
