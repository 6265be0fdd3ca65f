//! The server: accept loop on the given listener, TLS with the certificate chosen from the SNI
//! (and the TLS faults), HTTP/1.1 and HTTP/2 via hyper-util, and the request log.
//!
//! Each connection keeps a duplicate of its socket so the `reset` fault can set `SO_LINGER` to
//! zero and close it: the client then sees a real TCP RST mid-response, not a clean close.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

use super::fault_layer::{self, ResetMarker};
use super::request::{RequestCtx, token_type};
use super::routes;
use super::state::{State, lock};
use super::{
    ConnectionStats, EmulatorConfig, EmulatorError, Fault, JwtFailure, LoggedRequest, Shared, Vhost,
};
use crate::snowflake::rest::{ApiCall, PipeRef, Route};

/// Bound on the TLS handshake, so a silent client cannot hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on waiting for the next request's headers on a kept-alive HTTP/1 connection.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`] also waits for it.
pub struct Emulator {
    shared: Shared,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Starts the emulator on `listener` and returns at once; it serves until the handle is dropped.
pub async fn spawn(
    listener: TcpListener,
    config: EmulatorConfig,
) -> Result<Emulator, EmulatorError> {
    let addr = listener.local_addr().map_err(|source| EmulatorError::Io {
        op: "read the listener address".to_owned(),
        source,
    })?;
    // Certificate and key generation is CPU work; keep it off the async workers.
    let shared: Shared = tokio::task::spawn_blocking(move || State::new(config, addr.port()))
        .await
        .map_err(|e| EmulatorError::Config(format!("startup task failed: {e}")))?
        .map(Arc::new)?;
    let router = Router::new()
        .fallback(routes::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            fault_layer::layer,
        ))
        .with_state(shared.clone());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, shared.clone(), router, stopped));
    Ok(Emulator {
        shared,
        addr,
        stop,
        task: Some(task),
    })
}

impl Emulator {
    /// The address the emulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that issued the server certificates (trust only this).
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        &self.shared.tls.ca_pem
    }

    /// The account host, e.g. `myorg-myaccount.snowflakecomputing.com`.
    #[must_use]
    pub fn account_host(&self) -> &str {
        &self.shared.account_host
    }

    /// The ingest host discovery hands out, e.g.
    /// `myorg-myaccount.us-west-2.ingest.snowflakecomputing.com`.
    #[must_use]
    pub fn ingest_host(&self) -> &str {
        &self.shared.ingest_host
    }

    /// The OAuth identity provider's host ([`defaults::IDP_HOST`](super::defaults::IDP_HOST)).
    #[must_use]
    pub fn idp_host(&self) -> &str {
        &self.shared.idp_host
    }

    /// The identity provider's token endpoint, `https://<idp host>:<port>/oauth2/v1/token`.
    #[must_use]
    pub fn idp_token_url(&self) -> String {
        format!(
            "https://{}:{}{}",
            self.shared.idp_host,
            self.addr.port(),
            super::defaults::IDP_TOKEN_PATH
        )
    }

    /// An access token of the identity provider for `user`, valid for `lifetime_secs` (negative:
    /// expired that long ago): the token a user keeps in `token_file_path`. It is registered as
    /// a secret.
    #[must_use]
    pub fn idp_token(&self, user: &str, lifetime_secs: i64) -> crate::secret::Secret<String> {
        let token = routes::idp::mint(
            &self.shared,
            crate::snowflake::account::jwt_user(user),
            None,
            lifetime_secs,
        )
        .expect("HS256 signing with a 32-byte key");
        crate::secret::Secret::new(token)
    }

    /// The stage's storage host `:pipe-info` names (`netcheck-emulator-stage.…`): served by the
    /// emulator itself on its own port unless [`EmulatorConfig::stage`](super::EmulatorConfig)
    /// names an external server.
    #[must_use]
    pub fn stage_host(&self) -> &str {
        &self.shared.stage_host
    }

    /// The account identifier (`myorg-myaccount`).
    #[must_use]
    pub fn account(&self) -> &str {
        &self.shared.account
    }

    /// Every request so far, in order of completion.
    #[must_use]
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    /// Every rejected key-pair JWT, with the detailed 3943xx reason.
    #[must_use]
    pub fn jwt_failures(&self) -> Vec<JwtFailure> {
        lock(&self.shared.jwt_failures).clone()
    }

    /// Rows committed through a pipe, in commit order (names are case-insensitive).
    #[must_use]
    pub fn rows(&self, database: &str, schema: &str, pipe: &str) -> Vec<serde_json::Value> {
        self.shared
            .rows(&State::pipe_key(&PipeRef::new(database, schema, pipe)))
    }

    /// Accepted TCP connections and TLS handshakes per SNI host.
    #[must_use]
    pub fn connection_stats(&self) -> ConnectionStats {
        lock(&self.shared.stats).clone()
    }

    /// Replaces the active faults; new requests and handshakes see them at once.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.shared.set_faults(faults);
    }

    /// Stops accepting, closes every connection, and waits for the server task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("account_host", &self.shared.account_host)
            .field("ingest_host", &self.shared.ingest_host)
            .finish_non_exhaustive()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Shared,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                // Accept errors (e.g. EMFILE) are transient; back off briefly instead of spinning.
                let Ok((tcp, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                connections.spawn(serve_connection(shared.clone(), router.clone(), tcp, peer));
            }
        }
        while connections.try_join_next().is_some() {}
    }
    // Dropping the set aborts every connection task.
    connections.shutdown().await;
}

async fn serve_connection(shared: Shared, router: Router, tcp: TcpStream, peer: SocketAddr) {
    lock(&shared.stats).tcp_accepted += 1;
    let _ = tcp.set_nodelay(true);
    let twin = tcp
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(socket2::Socket::from);
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let Ok(Ok(start)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor).await else {
        return;
    };
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let config = shared.tls_config(sni.as_deref());
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config)).await;
    let sni_key = sni.clone().unwrap_or_default();
    let tls = {
        let mut stats = lock(&shared.stats);
        if let Ok(Ok(tls)) = handshake {
            *stats.tls_handshakes.entry(sni_key).or_default() += 1;
            tls
        } else {
            *stats.tls_failures.entry(sni_key).or_default() += 1;
            return;
        }
    };
    let reset = Arc::new(Notify::new());
    let conn_reset = reset.clone();
    let hang_up = Arc::new(Notify::new());
    let conn_hang_up = hang_up.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        handle(
            shared.clone(),
            router.clone(),
            req,
            sni.clone(),
            peer.ip(),
            conn_reset.clone(),
            conn_hang_up.clone(),
        )
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // An idle or stalled HTTP/1 client is dropped rather than held until shutdown.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    let quiet_end = tokio::select! {
        _ = connection => false,
        () = reset.notified() => {
            if let Some(socket) = &twin {
                let _ = socket.set_linger(Some(Duration::ZERO));
            }
            false
        }
        () = hang_up.notified() => true,
    };
    // `connection` (owning the original socket) is gone; closing the twin, the last handle,
    // sends the RST when linger is zero.
    if let (true, Some(socket)) = (quiet_end, twin) {
        hang_up_quietly(socket).await;
    }
}

/// Ends a connection with a FIN and no answer (no TLS `close_notify` either), then reads and
/// discards whatever the client still sends until it closes: data arriving on a closed socket
/// would make the kernel answer with a RST, and the client would see a reset instead.
async fn hang_up_quietly(socket: socket2::Socket) {
    use tokio::io::AsyncReadExt as _;
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let Ok(mut stream) = TcpStream::from_std(socket.into()) else {
        return;
    };
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, drain).await;
}

/// Builds the request context, runs the router, and logs the outcome.
async fn handle(
    shared: Shared,
    router: Router,
    req: Request<Incoming>,
    sni: Option<String>,
    client_ip: IpAddr,
    reset: Arc<Notify>,
    hang_up: Arc<Notify>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    let host = request_host(&req)
        .or_else(|| sni.clone())
        .unwrap_or_default();
    let vhost = shared.vhost((!host.is_empty()).then_some(host.as_str()));
    // The identity provider is no Snowflake host: none of the API's routes are there.
    let route = (vhost != Vhost::Idp)
        .then(|| Route::parse(req.method().as_str(), req.uri().path()))
        .flatten();
    let endpoint = match &route {
        Some(route) => route.endpoint(),
        None if vhost == Vhost::Idp && req.uri().path() == super::defaults::IDP_TOKEN_PATH => {
            ApiCall::IdpToken
        }
        None => ApiCall::Other,
    };
    let mut entry = LoggedRequest {
        method: req.method().to_string(),
        version: format!("{:?}", req.version()),
        host: host.clone(),
        sni,
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        endpoint,
        status: 0,
        token_type: token_type(req.headers()),
        client_ip,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        reset: false,
    };
    let ctx = RequestCtx {
        host,
        vhost,
        endpoint,
        route,
        client_ip,
        reset,
        hang_up,
    };
    let mut req = req.map(axum::body::Body::new);
    req.extensions_mut().insert(ctx);
    let response = router.oneshot(req).await?;
    entry.status = response.status().as_u16();
    entry.reset = response.extensions().get::<ResetMarker>().is_some();
    lock(&shared.log).push(entry);
    Ok(response)
}

/// The host a request names: the URI authority (HTTP/2) or the `Host` header, without port.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = req.uri().host().map(str::to_owned).or_else(|| {
        let value = req.headers().get(header::HOST)?.to_str().ok()?;
        let uri: axum::http::Uri = format!("https://{value}/").parse().ok()?;
        uri.host().map(str::to_owned)
    })?;
    Some(raw.trim_matches(['[', ']']).to_ascii_lowercase())
}
