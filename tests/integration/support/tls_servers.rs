//! Loopback servers for TLS tests: a real rustls HTTPS server that answers `200 OK`, a silent
//! peer, peers that drop the connection after the `ClientHello`, and a closed port.
//!
//! Each server binds 127.0.0.1:0 and runs on its own thread with its own tokio runtime, so it
//! keeps serving while the test blocks (e.g. waiting for a `netcheck` child process) and works
//! from sync and async tests alike. Dropping the handle stops it and closes its connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use netcheck::net::tls::TlsVersions;
use rustls::ServerConfig;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::pki::{ServerCert, TempFile};

/// How a [`TlsServer`] is set up.
pub struct TlsServerSpec {
    /// The chain to present and its key.
    pub cert: ServerCert,
    /// The TLS versions the server accepts.
    pub versions: TlsVersions,
    /// ALPN protocols the server selects from.
    pub alpn: Vec<Vec<u8>>,
}

impl TlsServerSpec {
    /// Both TLS versions, ALPN `h2` and `http/1.1`.
    pub fn new(cert: ServerCert) -> Self {
        Self {
            cert,
            versions: TlsVersions::Both,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    /// Accept only these versions.
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }
}

/// A real HTTPS server on loopback: rustls (ring) plus hyper, answering every request with
/// `200 OK` (a `Date` header, `Content-Length`, keep-alive; HTTP/1.1 or h2 by ALPN), so it can
/// stand in for a healthy target.
pub struct TlsServer {
    /// Where it listens (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    _background: Background,
}

impl TlsServer {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start(spec: TlsServerSpec) -> Self {
        let config = server_config(spec);
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counter = handshakes.clone();
        let (addr, background) = Background::spawn(move |listener| {
            accept_loop(listener, move |tcp| {
                serve_https(tcp, TlsAcceptor::from(config.clone()), counter.clone())
            })
        });
        Self {
            addr,
            handshakes,
            _background: background,
        }
    }

    /// How many TLS handshakes have completed (one per connection).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

fn server_config(spec: TlsServerSpec) -> Arc<ServerConfig> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(spec.versions.protocol_versions())
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(spec.cert.chain, spec.cert.key)
            .expect("the leaf key matches the leaf");
    config.alpn_protocols = spec.alpn;
    Arc::new(config)
}

async fn serve_https(tcp: TcpStream, acceptor: TlsAcceptor, handshakes: Arc<AtomicUsize>) {
    // A failed handshake is the client's verdict (the point of most tests), not a server error.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    handshakes.fetch_add(1, Ordering::SeqCst);
    let service = hyper::service::service_fn(|_request| async {
        let mut response = Response::new(String::from("ok\n"));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        Ok::<_, Infallible>(response)
    });
    // hyper adds `Date` and `Content-Length` itself.
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// How a [`RawServer`] treats each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawBehaviour {
    /// Accept, then never read nor write (a black-holing middlebox after the TCP handshake).
    Silent,
    /// Read the `ClientHello`, then reset the connection (`SO_LINGER` 0 + close sends RST):
    /// what SNI filtering looks like.
    ResetAfterHello,
    /// Read the `ClientHello`, then close cleanly (FIN).
    CloseAfterHello,
}

/// A TCP server on loopback that misbehaves in one [`RawBehaviour`].
pub struct RawServer {
    /// Where it listens (127.0.0.1, ephemeral port).
    pub addr: SocketAddr,
    _background: Background,
}

impl RawServer {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start(behaviour: RawBehaviour) -> Self {
        let (addr, background) = Background::spawn(move |listener| match behaviour {
            RawBehaviour::Silent => Box::pin(hold_silently(listener)) as BoxFuture,
            RawBehaviour::ResetAfterHello => {
                Box::pin(accept_loop(listener, |tcp| drop_after_hello(tcp, true)))
            }
            RawBehaviour::CloseAfterHello => {
                Box::pin(accept_loop(listener, |tcp| drop_after_hello(tcp, false)))
            }
        });
        Self {
            addr,
            _background: background,
        }
    }
}

type BoxFuture = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

async fn hold_silently(listener: TcpListener) {
    // Keeping the streams keeps the connections open until the server is dropped.
    let mut held = Vec::new();
    while let Ok((tcp, _)) = listener.accept().await {
        held.push(tcp);
    }
}

async fn drop_after_hello(mut tcp: TcpStream, reset: bool) {
    let mut hello = [0u8; 4096];
    let _ = tcp.read(&mut hello).await;
    if reset {
        // Zero linger makes close() send RST at once; nothing blocks.
        let _ = tcp.set_zero_linger();
    }
}

/// `openssl s_server` on 127.0.0.1 (a TLS stack other than rustls, and one that still speaks
/// TLS 1.0/1.1). Killed on drop.
pub struct OpensslServer {
    /// Where it listens.
    pub addr: SocketAddr,
    child: std::process::Child,
    _files: (TempFile, TempFile),
}

impl OpensslServer {
    /// Starts `openssl s_server -accept 127.0.0.1:0` presenting `cert`, plus `extra_args` (e.g.
    /// `["-tls1_1"]`, `["-www"]`). `None` when the `openssl` binary is not installed.
    pub fn start(cert: &ServerCert, extra_args: &[&str]) -> Option<Self> {
        use std::io::BufRead as _;
        let files = cert.write_pem_files();
        let mut child = match std::process::Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-cert"])
            .arg(files.0.path())
            // `-cert` takes the file's first certificate only; the rest is the chain.
            .arg("-cert_chain")
            .arg(files.0.path())
            .arg("-key")
            .arg(files.1.path())
            .args(extra_args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot start openssl s_server: {e}"),
        };
        // s_server prints `ACCEPT 127.0.0.1:PORT` once listening; if it dies instead, stdout
        // closes and the loop ends, so this cannot hang.
        let stdout = child.stdout.take().expect("piped stdout");
        let addr = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("ACCEPT ").and_then(|a| a.parse().ok()));
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_server did not start (args {extra_args:?})");
        };
        Some(Self {
            addr,
            child,
            _files: files,
        })
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address on 127.0.0.1 where nothing listens: bound to learn a free port, then released.
pub fn closed_port() -> SocketAddr {
    let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("bound address")
}

pub async fn accept_loop<F, Fut>(listener: TcpListener, handle: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    while let Ok((tcp, _)) = listener.accept().await {
        tokio::spawn(handle(tcp));
    }
}

/// A server's thread and runtime; dropping it stops the server and every connection task.
pub struct Background {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Binds 127.0.0.1:0 and runs `serve(listener)` on a new thread until dropped.
    pub fn spawn<F, Fut>(serve: F) -> (SocketAddr, Self)
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                tokio::select! {
                    () = serve(listener) => {}
                    _ = stop => {}
                }
            });
            // Dropping the runtime here cancels the spawned connection tasks.
        });
        (
            addr,
            Self {
                shutdown: Some(shutdown),
                thread: Some(thread),
            },
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
