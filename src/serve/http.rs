//! serve's HTTP/1.1 server: its own accept loop over hyper-util rather than `axum::serve`, which
//! sets no header-read timeout — a client that sends half a request head would hold its
//! connection, and graceful shutdown would wait for it, forever. Here a head must arrive within
//! [`Limits::header_read_timeout`], connections are bounded, and shutdown waits for the requests
//! in flight (their runs see the signal too) but not for a client that has not sent one.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use crate::runner::Signal;

/// The bounds of serve's connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head must be complete within this (also the idle time of a kept-alive
    /// connection): Prometheus sends its scrape at once.
    pub header_read_timeout: Duration,
    /// Once shutting down and its requests answered, how long a connection may take to write
    /// the last answer and close.
    pub shutdown_grace: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            max_connections: 256,
        }
    }
}

/// Accepts connections on `listener` and serves `app` on each, until the first signal in
/// `shutdown`; then stops accepting and returns once every connection has ended (see
/// [`connection`] for how long that may take).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: watch::Receiver<Vec<Signal>>,
    limits: Limits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        let slot = tokio::select! {
            _ = stop.wait_for(|s| !s.is_empty()) => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let tcp = tokio::select! {
            _ = stop.wait_for(|s| !s.is_empty()) => break,
            accepted = listener.accept() => accepted,
        };
        // Accept errors (e.g. EMFILE) are transient; back off briefly instead of spinning.
        let Ok((tcp, _)) = tcp else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        connections.spawn(connection(tcp, app.clone(), shutdown.clone(), limits, slot));
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves one connection. On shutdown its requests in flight are answered and it closes; a
/// connection with none (idle, or a head still arriving) is given `shutdown_grace` at most.
async fn connection(
    tcp: TcpStream,
    app: axum::Router,
    mut shutdown: watch::Receiver<Vec<Signal>>,
    limits: Limits,
    _slot: OwnedSemaphorePermit,
) {
    let _ = tcp.set_nodelay(true);
    // How many requests of this connection are being handled.
    let busy = Arc::new(watch::Sender::new(0_usize));
    let mut idle = busy.subscribe();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = busy.clone();
        busy.send_modify(|n| *n += 1);
        let answer = app.clone().oneshot(req);
        async move {
            let answer = answer.await;
            busy.send_modify(|n| *n -= 1);
            answer
        }
    });
    // HTTP/1.1 only (what Prometheus scrapes with): telling HTTP/2 apart first would read with
    // no timeout, so a client that connects and sends nothing would hold its slot for ever; the
    // header-read timer starts before the first byte.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = shutdown.wait_for(|s| !s.is_empty()) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = idle.wait_for(|n| *n == 0) => {}
    }
    let _ = tokio::time::timeout(limits.shutdown_grace, connection).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{Notify, watch};

    use super::{Limits, serve};
    use crate::runner::Signal;

    /// A half-sent request head: a request line and one header, never the blank line.
    const HALF_HEAD: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n";

    /// A server on loopback with `/metrics` (answered at once) and `/slow` (answered after
    /// `slow`; `slow_started` is notified when it is in flight).
    async fn start(
        limits: Limits,
        slow: Duration,
    ) -> (
        std::net::SocketAddr,
        watch::Sender<Vec<Signal>>,
        tokio::task::JoinHandle<()>,
        Arc<Notify>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let slow_started = Arc::new(Notify::new());
        let started = slow_started.clone();
        let app = axum::Router::new()
            .route("/metrics", get(|| async { "ok" }))
            .route(
                "/slow",
                get(move || async move {
                    started.notify_one();
                    tokio::time::sleep(slow).await;
                    "slow"
                }),
            );
        let (tx, rx) = watch::channel(Vec::new());
        let task = tokio::spawn(serve(listener, app, rx, limits));
        (addr, tx, task, slow_started)
    }

    /// Reads until the server closes; `None` if it has not within `within`.
    async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut answer = Vec::new();
        let mut capped = stream.take(1 << 20);
        let read = tokio::time::timeout(within, capped.read_to_end(&mut answer)).await;
        read.ok()
            .map(|_| String::from_utf8_lossy(&answer).into_owned())
    }

    #[tokio::test]
    async fn a_half_sent_head_is_dropped_after_the_header_read_timeout() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let (addr, _tx, _task, _) = start(limits, Duration::ZERO).await;
        // Timed from before the connect, so the server's timer (started at accept) cannot have
        // run longer than what is measured, however late this task gets to write.
        let start = Instant::now();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(HALF_HEAD).await.unwrap();
        let answer = read_to_close(&mut client, Duration::from_secs(10)).await;
        assert!(
            answer.is_some(),
            "a half-sent head held its connection for 10 s"
        );
        assert!(start.elapsed() >= Duration::from_millis(250), "{answer:?}");
        // The server still answers a whole request.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut client, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_dropped_after_the_header_read_timeout() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let (addr, _tx, _task, _) = start(limits, Duration::ZERO).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        assert!(
            read_to_close(&mut client, Duration::from_secs(10))
                .await
                .is_some(),
            "a silent client held its connection for 10 s"
        );
    }

    #[tokio::test]
    async fn shutdown_answers_requests_in_flight_and_does_not_wait_for_a_stalled_client() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_millis(200),
            ..Limits::default()
        };
        // The slow request outlasts the grace: it is answered because it is in flight.
        let (addr, tx, task, slow_started) = start(limits, Duration::from_millis(1500)).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(HALF_HEAD).await.unwrap();
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        slow_started.notified().await;
        let signalled = Instant::now();
        tx.send_modify(|s| s.push(Signal::Sigterm));
        let answer = read_to_close(&mut slow, Duration::from_secs(10))
            .await
            .expect("the request in flight was not answered");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("slow"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("shutdown waited for a client that never sent a whole head")
            .unwrap();
        assert!(
            signalled.elapsed() < Duration::from_secs(8),
            "{:?}",
            signalled.elapsed()
        );
        assert!(
            read_to_close(&mut stalled, Duration::from_secs(1))
                .await
                .is_some()
        );
    }
}
