//! The lab's own network elements, for what no kernel option or packaged daemon here offers:
//! a TCP relay that delays every segment (the kernel has no netem), a DNS server that answers
//! SERVFAIL to everything (dnsmasq turns a broken upstream into REFUSED, never SERVFAIL), a
//! service that greets with a banner and speaks no HTTP (no SSH or SMTP server is installed), and
//! a proxy that opens tunnels and then sends a block page into them (no packaged proxy does that
//! on demand).
//!
//! Each runs on its own thread, moved into a lab namespace before it creates a socket, with
//! its own tokio runtime; dropping the handle stops it and closes its connections.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;

use super::netns;

/// A background element; stops on drop.
pub struct Element {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Element {
    /// On a new thread inside namespace `ns`: `bind` creates the sockets (so they live in the
    /// namespace), then `serve` runs on them until the element is dropped. Returns once bound,
    /// or with the binding error.
    fn spawn<T, B, F, Fut>(ns: &str, bind: B, serve: F) -> Result<Self, String>
    where
        B: FnOnce() -> std::io::Result<T> + Send + 'static,
        F: FnOnce(T) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ns = ns.to_owned();
        let thread = std::thread::spawn(move || {
            let bound = netns::enter(&ns)
                .map_err(|e| format!("setns {ns}: {e}"))
                .and_then(|()| bind().map_err(|e| e.to_string()));
            let sockets = match bound {
                Ok(sockets) => {
                    let _ = ready_tx.send(Ok(()));
                    sockets
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                tokio::select! {
                    () = serve(sockets) => {}
                    _ = stopped => {}
                }
            });
        });
        let element = Self {
            stop: Some(stop),
            thread: Some(thread),
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|e| format!("element did not start: {e}"))??;
        Ok(element)
    }
}

impl Drop for Element {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP server on `listen` (in namespace `ns`) that hands every accepted connection to
/// `handle` on a task of its own.
fn tcp_server<H, Fut>(ns: &str, listen: SocketAddr, handle: H) -> Result<Element, String>
where
    H: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let bind = move || {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    Element::spawn(ns, bind, move |listener| async move {
        let listener = TcpListener::from_std(listener).expect("inside a runtime");
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    })
}

/// A TCP relay on `listen` (in namespace `ns`) to `upstream` that holds every chunk it reads
/// for `delay` before passing it on, in both directions: a long, slow path.
pub fn delay_relay(
    ns: &str,
    listen: SocketAddr,
    upstream: SocketAddr,
    delay: Duration,
) -> Result<Element, String> {
    tcp_server(ns, listen, move |client| async move {
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::join!(delayed_copy(cr, sw, delay), delayed_copy(sr, cw, delay));
    })
}

async fn delayed_copy(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: Duration,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tokio::time::sleep(delay).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// A TCP service on `listen` (in namespace `ns`) that sends `banner` to every client and then
/// reads and discards whatever it is sent.
pub fn banner_service(ns: &str, listen: SocketAddr, banner: String) -> Result<Element, String> {
    tcp_server(ns, listen, move |mut client| {
        let banner = banner.clone();
        async move {
            if client.write_all(banner.as_bytes()).await.is_ok() {
                let _ = tokio::io::copy(&mut client, &mut tokio::io::sink()).await;
            }
        }
    })
}

/// A forward proxy on `listen` (in namespace `ns`) that answers every CONNECT with 200, waits
/// for the client's first bytes (its TLS `ClientHello`) and answers them with an HTML block page,
/// then closes: what URL-filtering appliances do to a tunnel their policy refuses.
pub fn block_page_proxy(ns: &str, listen: SocketAddr, title: String) -> Result<Element, String> {
    tcp_server(ns, listen, move |mut client| {
        let title = title.clone();
        async move {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && matches!(client.read(&mut byte).await, Ok(1)) {
                head.push(byte[0]);
            }
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut hello = [0u8; 2048];
            if !matches!(client.read(&mut hello).await, Ok(n) if n > 0) {
                return;
            }
            let page = format!(
                "<html><head><title>{title}</title></head><body><h1>{title}</h1>\
                 <p>Category: Uncategorized. Policy: corp-default.</p></body></html>"
            );
            let answer = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = client.write_all(answer.as_bytes()).await;
            let _ = client.shutdown().await;
        }
    })
}

/// A DNS server on `listen` (UDP, in namespace `ns`) that answers every query with SERVFAIL:
/// the upstream of a resolver whose forwarding is broken.
pub fn servfail_dns(ns: &str, listen: SocketAddr) -> Result<Element, String> {
    let bind = move || {
        let socket = std::net::UdpSocket::bind(listen)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    };
    Element::spawn(ns, bind, |socket| async move {
        let socket = UdpSocket::from_std(socket).expect("inside a runtime");
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(reply) = servfail(&buf[..n]) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    })
}

/// The SERVFAIL reply to a query: same id and question, QR set, RD copied, RA set, RCODE 2,
/// no records.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut reply = query.to_vec();
    reply[2] = 0x80 | (query[2] & 0x01);
    reply[3] = 0x80 | 0x02;
    // Keep QDCOUNT, zero the answer, authority and additional counts; an EDNS OPT record in
    // the additional section is dropped with them, so cut the message after the question.
    reply[6..12].fill(0);
    let question_end = question_end(query)?;
    reply.truncate(question_end);
    Some(reply)
}

/// Where the (single) question of a message ends: its name, then type and class.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let len = usize::from(*msg.get(i)?);
        if len == 0 {
            return Some(i + 1 + 4).filter(|end| *end <= msg.len());
        }
        i += 1 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servfail_keeps_id_and_question() {
        // id 0x1234, RD, one question: "a.b" A IN, plus an OPT record in additional.
        let mut q = vec![
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, 1, b'a', 1, b'b', 0, 0, 1, 0, 1,
        ];
        q.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        let r = servfail(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2], 0x81);
        assert_eq!(r[3] & 0x0f, 2);
        assert_eq!(&r[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], &q[12..21]);
    }
}
