//! The API's accept loop: hyper's HTTP/1 server with the limits that keep idle or slow sockets
//! from stopping the tills (docs/contract.md §1, SECURITY.md "Connections").
//!
//! - **Header read timeout** (`[http] header_timeout_secs`, 10 s): hyper's own, which needs a
//!   timer (`axum::serve` sets none, so it was off). It runs from the moment hyper waits for a
//!   request head — on a new connection and again after every answer on a kept-alive one — so a
//!   socket that sends nothing, a head sent byte by byte, and an idle keep-alive connection are all
//!   closed after it.
//! - **Body deadline** (`[http] body_timeout_secs`, 10 s): the whole request body must arrive
//!   within it, counted from the end of the head ([`DeadlineBody`]); a trickled body ends in 408.
//! - **Connection cap** (`[http] max_connections`, 256): at the cap, a new connection closes the
//!   oldest one that has no request in progress (gracefully: hyper closes an idle connection at
//!   once), so sockets held open by someone else cannot lock a till out; if every connection is
//!   busy, the new one is closed.
//! - **Per-peer cap** (`[http] max_connections_per_peer`, 32): a non-loopback address may hold at
//!   most this many connections (LAN mode: a phone on the Wi-Fi cannot fill the cap); loopback
//!   peers are bounded by the global cap only.

use super::conn::Conn;
use axum::Router;
use axum::body::Body;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The connection limits (`[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// 0: no per-peer cap.
    pub max_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_per_peer: 32,
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Open {
    peer: IpAddr,
    opened: Instant,
    /// Requests being handled on it now.
    busy: Arc<AtomicUsize>,
    /// Asks the connection to close once it is idle (at once if it is).
    close: CancellationToken,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Open>,
}

impl Table {
    fn held_by(&self, peer: IpAddr) -> usize {
        self.open.values().filter(|o| o.peer == peer).count()
    }

    /// Asks the oldest idle connection not yet asked to close; `false` if every one is busy.
    fn close_oldest_idle(&self) -> bool {
        let victim = self
            .open
            .values()
            .filter(|o| o.busy.load(Ordering::Acquire) == 0 && !o.close.is_cancelled())
            .min_by_key(|o| o.opened);
        match victim {
            Some(o) => {
                o.close.cancel();
                true
            }
            None => false,
        }
    }
}

/// Connections currently open (for tests and the log).
#[derive(Clone, Default)]
pub struct Connections(Arc<Mutex<Table>>);

impl Connections {
    pub fn count(&self) -> usize {
        self.0.lock().map(|t| t.open.len()).unwrap_or(0)
    }
}

/// Serves `router` on `listener` until `stop`, then closes every connection once its request
/// is answered and returns when they are all gone.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    serve_counted(listener, router, limits, stop, Connections::default()).await
}

pub async fn serve_counted(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
    table: Connections,
) {
    let tasks = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    // Flat writes: `Conn` inspects answer heads in `poll_write` (see conn.rs).
    builder.writev(false);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some((id, busy, close)) = admit(&table, &limits, peer) else {
            tasks.spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service(router.clone(), busy, limits.body_timeout, peer);
        let connection = builder.serve_connection(TokioIo::new(Conn::new(stream)), service);
        let (table, stop) = (table.clone(), stop.clone());
        tasks.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => Some(ended),
                _ = close.cancelled() => None,
                _ = stop.cancelled() => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            if let Ok(mut t) = table.0.lock() {
                t.open.remove(&id);
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Registers a new connection from `peer`, making room under the caps, or `None` to close it.
fn admit(table: &Connections, limits: &Limits, peer: SocketAddr) -> Option<(u64, Arc<AtomicUsize>, CancellationToken)> {
    let mut t = table.0.lock().ok()?;
    let ip = peer.ip();
    if limits.max_per_peer > 0 && !super::guards::is_loopback(ip) && t.held_by(ip) >= limits.max_per_peer {
        tracing::warn!(%peer, cap = limits.max_per_peer, "connection refused: this address holds the most it may");
        return None;
    }
    if t.open.len() >= limits.max_connections && !t.close_oldest_idle() {
        tracing::warn!(%peer, cap = limits.max_connections, "connection refused: every connection is busy");
        return None;
    }
    t.next_id += 1;
    let id = t.next_id;
    let busy = Arc::new(AtomicUsize::new(0));
    let close = CancellationToken::new();
    t.open.insert(
        id,
        Open {
            peer: ip,
            opened: Instant::now(),
            busy: busy.clone(),
            close: close.clone(),
        },
    );
    Some((id, busy, close))
}

/// The answer on a connection the caps turn away: the contract's JSON error (`503
/// too_many_connections`, retry in a second) instead of a silent close, written within a second
/// and without reading the request.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 110\r\n\r\n{\"code\":\"too_many_connections\",\"message\":\"the adapter holds \
as many connections as it may; retry in a second\"}";

async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await
    })
    .await;
}

/// Counts a request as in progress until its handler has answered.
struct InProgress(Arc<AtomicUsize>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn service(
    router: Router,
    busy: Arc<AtomicUsize>,
    body_timeout: Duration,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        busy.fetch_add(1, Ordering::AcqRel);
        let in_progress = InProgress(busy.clone());
        let router = router.clone();
        async move {
            let _in_progress = in_progress;
            let mut request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
            request.extensions_mut().insert(super::guards::Peer(peer));
            tower::ServiceExt::oneshot(router, request).await
        }
    })
}

/// The request body read past its deadline (→ 408 `request_timeout`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTooSlow(pub Duration);

/// A request body that must arrive whole within a deadline counted from its head. The timer is
/// armed only when the body is not all there at the first read (most bodies are, with their
/// head): a request that needs no wait registers no timer.
pub struct DeadlineBody {
    inner: Incoming,
    /// When the head was read; the deadline is this plus `limit`.
    since: tokio::time::Instant,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    limit: Duration,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            since: tokio::time::Instant::now(),
            deadline: None,
            limit,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let at = self.since + self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(t: &mut Table, peer: &str, age_ms: u64, busy: usize) -> CancellationToken {
        t.next_id += 1;
        let close = CancellationToken::new();
        t.open.insert(
            t.next_id,
            Open {
                peer: peer.parse().unwrap(),
                opened: Instant::now() - Duration::from_millis(age_ms),
                busy: Arc::new(AtomicUsize::new(busy)),
                close: close.clone(),
            },
        );
        close
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_is_asked_to_close() {
        let mut t = Table::default();
        let busy_old = open(&mut t, "127.0.0.1", 900, 1);
        let idle_old = open(&mut t, "127.0.0.1", 500, 0);
        let idle_new = open(&mut t, "127.0.0.1", 10, 0);
        assert!(t.close_oldest_idle());
        assert!(idle_old.is_cancelled() && !busy_old.is_cancelled() && !idle_new.is_cancelled());
        // One already asked is not asked again: the next oldest idle one is.
        assert!(t.close_oldest_idle());
        assert!(idle_new.is_cancelled());
        assert!(!t.close_oldest_idle(), "only a busy one is left");
        assert!(!busy_old.is_cancelled());
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer_with_the_json_error() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "too_many_connections");
    }

    #[test]
    fn a_lan_peer_is_held_to_its_own_cap_and_loopback_is_not() {
        let table = Connections::default();
        let limits = Limits {
            max_connections: 10,
            max_per_peer: 2,
            ..Limits::default()
        };
        let phone: SocketAddr = "192.168.1.50:40000".parse().unwrap();
        let till: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert!(admit(&table, &limits, phone).is_some());
        assert!(admit(&table, &limits, phone).is_some());
        assert!(admit(&table, &limits, phone).is_none(), "the third from one address");
        assert!(admit(&table, &limits, till).is_some(), "another address still gets in");
        for _ in 0..3 {
            assert!(admit(&table, &limits, local).is_some());
        }
        assert_eq!(table.count(), 6);
    }
}
