//! A DNS stub resolver that asks servers the way glibc's `res_send` does — one server at a time,
//! in resolv.conf's order (from a random one under `rotate`), `attempts` rounds, glibc's wait per
//! server, A and AAAA in parallel on one connected UDP socket, TCP when the answer is truncated —
//! and records what each server said. hickory's resolver asks servers in parallel, ranks them by
//! speed and cannot see ICMP errors (its UDP sockets are not connected), so it can neither
//! reproduce what this machine's programs see nor say which server failed how.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

use super::system::{DnsConf, candidates, server_order, server_wait};

/// The largest DNS message (the TCP length prefix is 16 bits).
const MAX_MESSAGE: usize = 65_535;

/// What one server did with one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerOutcome {
    /// Addresses came back.
    Answer,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// NOERROR without an address record.
    NoData,
    Refused,
    /// SERVFAIL, NOTIMP or another error code.
    ServFail,
    /// ICMP port or host unreachable, or TCP refused: nothing serves DNS there.
    Unreachable,
    /// No answer within the wait.
    Timeout,
    /// This machine could not open the query's socket (out of file descriptors): nothing was
    /// sent, so the server is not to blame.
    LocalLimit,
    /// A socket error or an unreadable answer.
    Error,
}

/// One question to one server and what came of it: the evidence of which servers were asked.
#[derive(Debug, Clone, Serialize)]
pub struct ServerAttempt {
    #[serde(serialize_with = "serialize_display")]
    pub server: SocketAddr,
    /// The name asked (the host, or the host with a search domain).
    pub name: String,
    pub outcome: ServerOutcome,
    /// The response code, error or what was missing, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(serialize_with = "crate::units::serialize_ms")]
    pub elapsed: Duration,
}

fn serialize_display<S: serde::Serializer>(v: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The addresses a name resolved to, and the name that answered.
pub(super) struct Found {
    pub(super) name: String,
    pub(super) addrs: Vec<IpAddr>,
    pub(super) cnames: Vec<String>,
}

/// How a lookup ended without addresses; the attempts say the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    NxDomain,
    NoData,
    ServFail,
    Refused,
    Unreachable,
    /// The servers were silent (or the step's time ran out).
    Timeout,
    /// No query could be sent: this machine is out of file descriptors.
    LocalLimit,
}

/// Resolves `host` for the record types in `types` (asked together), trying the search list as
/// glibc's `res_search` does. Every server asked is appended to `log`; nothing runs past
/// `deadline`.
pub(super) async fn lookup(
    conf: &DnsConf,
    host: &str,
    types: &[RecordType],
    deadline: Instant,
    log: &mut Vec<ServerAttempt>,
) -> Result<Found, Failed> {
    let (mut got_nodata, mut got_servfail) = (false, false);
    let mut last = Failed::NxDomain;
    for name in candidates(host, conf) {
        match query_servers(conf, &name, types, deadline, log).await {
            Ok(found) => return Ok(found),
            // A missing name or record: the next search domain may have it.
            Err(Failed::NxDomain) => last = Failed::NxDomain,
            Err(Failed::NoData) => got_nodata = true,
            Err(Failed::ServFail) => got_servfail = true,
            // Silence, refusal or nobody listening: glibc stops searching.
            Err(other) => return Err(other),
        }
    }
    Err(if got_nodata {
        Failed::NoData
    } else if got_servfail {
        Failed::ServFail
    } else {
        last
    })
}

/// Asks the servers about one name: `attempts` rounds over the list until one gives a final
/// answer.
async fn query_servers(
    conf: &DnsConf,
    name: &str,
    types: &[RecordType],
    deadline: Instant,
    log: &mut Vec<ServerAttempt>,
) -> Result<Found, Failed> {
    let count = conf.servers.len();
    let offset = if conf.rotate && count > 1 {
        rand::random::<usize>() % count
    } else {
        0
    };
    let mut seen = Vec::new();
    for _ in 0..conf.attempts {
        for index in server_order(count, offset) {
            let server = conf.servers[index];
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Failed::Timeout);
            }
            let wait = server_wait(conf.timeout, index, count).min(remaining);
            let start = Instant::now();
            let (outcome, detail, found) = ask(server, name, types, wait).await;
            log.push(ServerAttempt {
                server,
                name: name.to_owned(),
                outcome,
                detail,
                elapsed: start.elapsed(),
            });
            match (outcome, found) {
                (ServerOutcome::Answer, Some(found)) => return Ok(found),
                (ServerOutcome::NxDomain, _) => return Err(Failed::NxDomain),
                (ServerOutcome::NoData, _) => return Err(Failed::NoData),
                // The next server needs a socket too: asking it would only repeat this.
                (ServerOutcome::LocalLimit, _) => return Err(Failed::LocalLimit),
                _ => seen.push(outcome),
            }
        }
    }
    // Every server failed: the most telling failure wins (an answer code over silence over
    // unreachability), as the finding should name what a server actually said.
    let has = |o| seen.contains(&o);
    Err(if has(ServerOutcome::ServFail) {
        Failed::ServFail
    } else if has(ServerOutcome::Refused) {
        Failed::Refused
    } else if has(ServerOutcome::Timeout) || has(ServerOutcome::Error) {
        Failed::Timeout
    } else {
        Failed::Unreachable
    })
}

/// What one server answered for `name`: queries for every type go out at once on a connected UDP
/// socket (so ICMP errors reach us); a truncated answer is asked again over TCP.
async fn ask(
    server: SocketAddr,
    name: &str,
    types: &[RecordType],
    wait: Duration,
) -> (ServerOutcome, Option<String>, Option<Found>) {
    let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
        return (
            ServerOutcome::Error,
            Some(format!("`{name}` is not a valid DNS name")),
            None,
        );
    };
    let queries: Vec<Message> = types
        .iter()
        .map(|t| {
            let mut m = Message::query();
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(qname.clone(), *t));
            m
        })
        .collect();
    let deadline = tokio::time::Instant::now() + wait;
    let answers = match udp(server, &queries, deadline).await {
        Err(Exchange::Truncated) => tokio::time::timeout_at(deadline, tcp(server, &queries))
            .await
            .unwrap_or(Err(Exchange::Timeout(Vec::new()))),
        other => other,
    };
    judge(name, types, answers, wait)
}

/// Why an exchange gave no complete set of answers.
enum Exchange {
    /// The answers that did arrive.
    Timeout(Vec<Message>),
    Truncated,
    Unreachable(String),
    /// This machine is out of file descriptors (`EMFILE`/`ENFILE`).
    LocalLimit(String),
    Error(String),
}

impl From<std::io::Error> for Exchange {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        if crate::limits::is_descriptor_exhaustion(&e) {
            return Self::LocalLimit(e.to_string());
        }
        match e.kind() {
            K::ConnectionRefused => Self::Unreachable("port unreachable".into()),
            K::HostUnreachable | K::NetworkUnreachable => Self::Unreachable(e.to_string()),
            _ => Self::Error(e.to_string()),
        }
    }
}

async fn udp(
    server: SocketAddr,
    queries: &[Message],
    deadline: tokio::time::Instant,
) -> Result<Vec<Message>, Exchange> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    for q in queries {
        socket.send(&encode(q)?).await?;
    }
    let mut answers: Vec<Message> = Vec::new();
    let mut buf = vec![0_u8; MAX_MESSAGE];
    while answers.len() < queries.len() {
        let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await else {
            return Err(Exchange::Timeout(answers));
        };
        let len = received?;
        // Anything not answering one of our questions is ignored, as glibc does.
        let Some(answer) = Message::from_vec(&buf[..len])
            .ok()
            .filter(|a| answers_one_of(a, queries) && !answers.iter().any(|b| b.id == a.id))
        else {
            continue;
        };
        if answer.metadata.truncation {
            return Err(Exchange::Truncated);
        }
        answers.push(answer);
    }
    Ok(answers)
}

async fn tcp(server: SocketAddr, queries: &[Message]) -> Result<Vec<Message>, Exchange> {
    let mut stream = TcpStream::connect(server).await?;
    for q in queries {
        let bytes = encode(q)?;
        let len =
            u16::try_from(bytes.len()).map_err(|_| Exchange::Error("query too long".into()))?;
        stream.write_all(&len.to_be_bytes()).await?;
        stream.write_all(&bytes).await?;
    }
    let mut answers = Vec::new();
    while answers.len() < queries.len() {
        let len = usize::from(stream.read_u16().await?);
        let mut buf = vec![0_u8; len];
        stream.read_exact(&mut buf).await?;
        let answer =
            Message::from_vec(&buf).map_err(|e| Exchange::Error(format!("bad answer: {e}")))?;
        if answers_one_of(&answer, queries) {
            answers.push(answer);
        }
    }
    Ok(answers)
}

fn encode(m: &Message) -> Result<Vec<u8>, Exchange> {
    m.to_vec().map_err(|e| Exchange::Error(e.to_string()))
}

/// Whether `answer` carries the id and question of one of `queries`.
fn answers_one_of(answer: &Message, queries: &[Message]) -> bool {
    // hickory compares names case-insensitively, as DNS does.
    let question = |m: &Message| {
        m.queries
            .first()
            .map(|q| (q.query_type(), q.name().clone()))
    };
    queries
        .iter()
        .any(|q| q.id == answer.id && question(q).is_some() && question(q) == question(answer))
}

/// Turns the server's answers into an outcome.
fn judge(
    name: &str,
    types: &[RecordType],
    answers: Result<Vec<Message>, Exchange>,
    wait: Duration,
) -> (ServerOutcome, Option<String>, Option<Found>) {
    let (answers, missing) = match answers {
        Ok(a) => (a, None),
        Err(Exchange::Timeout(a)) if a.is_empty() => {
            return (
                ServerOutcome::Timeout,
                Some(format!("no answer within {}", secs(wait))),
                None,
            );
        }
        // Part of the answers: glibc also settles for the family that answered.
        Err(Exchange::Timeout(a)) => (a, Some(wait)),
        Err(Exchange::Unreachable(why)) => return (ServerOutcome::Unreachable, Some(why), None),
        Err(Exchange::LocalLimit(why)) => return (ServerOutcome::LocalLimit, Some(why), None),
        Err(Exchange::Error(why)) => {
            return (ServerOutcome::Error, Some(why), None);
        }
        Err(Exchange::Truncated) => {
            return (ServerOutcome::Error, Some("truncated answer".into()), None);
        }
    };
    let mut addrs = Vec::new();
    let mut cnames: Vec<String> = Vec::new();
    let mut failed_code = None;
    let mut nxdomain = false;
    for a in &answers {
        match a.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => nxdomain = true,
            code => failed_code = Some(code),
        }
        for record in &a.answers {
            if let RData::CNAME(c) = &record.data {
                let c = c.0.to_string().trim_end_matches('.').to_owned();
                if !cnames.contains(&c) {
                    cnames.push(c);
                }
            }
            addrs.extend(super::address(&record.data));
        }
    }
    let found = |addrs| Found {
        name: name.to_owned(),
        addrs,
        cnames: cnames.clone(),
    };
    if !addrs.is_empty() {
        let detail = missing.map(|wait| {
            let answered: Vec<RecordType> = answers
                .iter()
                .filter_map(|a| a.queries.first().map(Query::query_type))
                .collect();
            let unanswered: Vec<String> = types
                .iter()
                .filter(|t| !answered.contains(t))
                .map(ToString::to_string)
                .collect();
            format!("no {} answer within {}", unanswered.join("/"), secs(wait))
        });
        return (ServerOutcome::Answer, detail, Some(found(addrs)));
    }
    match failed_code {
        Some(ResponseCode::Refused) => (ServerOutcome::Refused, Some("REFUSED".into()), None),
        Some(code) => (
            ServerOutcome::ServFail,
            Some(code.to_str().to_uppercase()),
            None,
        ),
        None if nxdomain => (ServerOutcome::NxDomain, Some("NXDOMAIN".into()), None),
        None if missing.is_some() => (
            ServerOutcome::Timeout,
            Some(format!("no complete answer within {}", secs(wait))),
            None,
        ),
        None => (
            ServerOutcome::NoData,
            Some("no A or AAAA record".into()),
            None,
        ),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
