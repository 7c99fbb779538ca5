//! The benchmark's Rust peer: hyper 0.14 on tokio's multi-threaded runtime, answering what
//! the stages answer in the benchmark's cells:
//!
//!   GET /plaintext   200 text/plain "Hello, World!"
//!   POST /echo       200, the request body
//!   GET /NAME        the file NAME under --root, read whole (tokio::fs), or 404
//!
//!   hyper-peer --host 127.0.0.1 --port 0 --root DIR --threads 2
//!
//! Like the stages, it prints "listening on HOST:PORT" once it accepts, and stops on
//! SIGTERM or SIGINT with exit status 0.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::header::HeaderValue;
use hyper::service::{make_service_fn, service_fn};
use hyper::{header, Body, Method, Request, Response, Server, StatusCode};
use tokio::signal::unix::{signal, Signal, SignalKind};

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body))
        .unwrap()
}

async fn handle(req: Request<Body>, root: Arc<PathBuf>) -> Result<Response<Body>, Infallible> {
    // hyper closes after answering a request that says "Connection: close", but does not
    // say so in the answer (RFC 9112, section 9.6: it SHOULD); a client that then sends its
    // next request finds the connection closed (wrk counts a read error each time).
    let close = req.headers().get(header::CONNECTION).map_or(false, |v| {
        v.to_str().map_or(false, |v| {
            v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    });
    let mut response = route(req, root).await;
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

async fn route(req: Request<Body>, root: Arc<PathBuf>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/plaintext") | (&Method::HEAD, "/plaintext") => {
            plain(StatusCode::OK, "Hello, World!")
        }
        (&Method::POST, "/echo") => match hyper::body::to_bytes(req.into_body()).await {
            Ok(bytes) => Response::new(Body::from(bytes)),
            Err(_) => plain(StatusCode::BAD_REQUEST, "bad body\n"),
        },
        (&Method::GET, path) => {
            // Only plain names below the root: no "..", no absolute paths.
            let rel = Path::new(path.trim_start_matches('/'));
            if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return plain(StatusCode::NOT_FOUND, "not found\n");
            }
            match tokio::fs::read(root.join(rel)).await {
                Ok(data) => Response::builder()
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(Body::from(data))
                    .unwrap(),
                Err(_) => plain(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

/// Ready at SIGTERM or SIGINT. A future by hand: tokio::select! would need tokio's
/// "macros" feature, whose proc-macro crates (syn) take most of a cold build's time.
struct Stop(Signal, Signal);

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let stop = &mut *self;
        if stop.0.poll_recv(cx).is_ready() || stop.1.poll_recv(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: hyper-peer [--host ADDR] [--port N] [--root DIR] [--threads N]");
    std::process::exit(2);
}

fn main() {
    let (mut host, mut port, mut root, mut threads) =
        ("127.0.0.1".to_string(), 8080u16, PathBuf::from("."), 1usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            "--root" => root = PathBuf::from(value),
            "--threads" => threads = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let addr: SocketAddr = format!("{host}:{port}").parse().unwrap_or_else(|_| usage());
        let root = Arc::new(root);
        let make = make_service_fn(move |_| {
            let root = root.clone();
            async move { Ok::<_, Infallible>(service_fn(move |req| handle(req, root.clone()))) }
        });
        let server = match Server::try_bind(&addr) {
            Ok(builder) => builder.tcp_nodelay(true).serve(make),
            Err(e) => {
                eprintln!("hyper-peer: {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("listening on {}", server.local_addr());
        use std::io::Write;
        std::io::stdout().flush().ok();
        let stop = Stop(
            signal(SignalKind::terminate()).expect("SIGTERM handler"),
            signal(SignalKind::interrupt()).expect("SIGINT handler"),
        );
        if let Err(e) = server.with_graceful_shutdown(stop).await {
            eprintln!("hyper-peer: {e}");
            std::process::exit(1);
        }
    });
}
