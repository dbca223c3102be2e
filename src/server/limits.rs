//! Timeouts and limits of the HTTP service, and the accept loop that applies
//! the ones a router cannot (reading headers, open connections).
//!
//! | limit | where it is applied | default |
//! | --- | --- | --- |
//! | [`Limits::header_read_timeout`] | hyper's HTTP/1 connection, with its tokio timer: a request head (also the next one on a kept-alive connection) must arrive within it, or the connection is closed | 10 s |
//! | [`Limits::request_timeout`] | `tower_http::timeout::TimeoutLayer` in [`router`](super::router): reading the body and answering; 503 after it | 30 s |
//! | [`Limits::max_concurrent_requests`] | `tower::limit::GlobalConcurrencyLimitLayer` in the router: more wait for a turn (within the request timeout) | 64 |
//! | [`Limits::max_connections`] | [`serve`]: connections past it wait in the listen backlog, unaccepted, until one closes | 256 |
//! | [`Limits::max_body_bytes`] | `tower_http::limit::RequestBodyLimitLayer` and the body reader in the router: 413 | 1 MiB |
//!
//! The token is checked before any of a request's body is read.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The service's timeouts and limits. [`Limits::default`] suits an admin API;
/// [`Limits::validate`] says what each may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Limits {
    /// How long a client has to send a request's head (request line and
    /// headers); also how long a kept-alive connection may sit idle.
    pub header_read_timeout: Duration,
    /// How long a request may take from its head to its answer, body
    /// included.
    pub request_timeout: Duration,
    /// Open connections at most; more wait, unaccepted.
    pub max_connections: usize,
    /// Requests handled at once at most; more wait for a turn.
    pub max_concurrent_requests: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

/// The default [`Limits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`Limits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// The default [`Limits::max_concurrent_requests`].
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;
/// The default [`Limits::max_body_bytes`]: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The ranges [`Limits::validate`] accepts, as (name, low, high) for the
/// durations...
const DURATION_RANGES: [(&str, Duration, Duration); 2] = [
    (
        "header_read_timeout",
        Duration::from_millis(100),
        Duration::from_secs(600),
    ),
    (
        "request_timeout",
        Duration::from_millis(100),
        Duration::from_secs(3600),
    ),
];
/// ...and for the sizes.
const SIZE_RANGES: [(&str, usize, usize); 3] = [
    ("max_connections", 1, 65_536),
    ("max_concurrent_requests", 1, 65_536),
    ("max_body_bytes", 1 << 10, 64 << 20),
];

impl Limits {
    /// Checks every limit against its range.
    ///
    /// # Errors
    ///
    /// A message naming the option, the value and the range allowed, e.g.
    /// `request_timeout: 0s is out of range; use 100ms to 1h`.
    pub fn validate(&self) -> Result<(), String> {
        let durations = [self.header_read_timeout, self.request_timeout];
        for ((name, lo, hi), v) in DURATION_RANGES.iter().zip(durations) {
            if v < *lo || v > *hi {
                return Err(format!(
                    "{name}: {} is out of range; use {} to {}",
                    humantime::format_duration(v),
                    humantime::format_duration(*lo),
                    humantime::format_duration(*hi)
                ));
            }
        }
        let sizes = [
            self.max_connections,
            self.max_concurrent_requests,
            self.max_body_bytes,
        ];
        for ((name, lo, hi), v) in SIZE_RANGES.iter().zip(sizes) {
            if v < *lo || v > *hi {
                return Err(format!("{name}: {v} is out of range; use {lo} to {hi}"));
            }
        }
        Ok(())
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then
/// lets open requests finish (connections are closed as their requests
/// end) and returns when every connection is closed.
///
/// Each connection is HTTP/1.1 through hyper, with
/// [`Limits::header_read_timeout`]; at most [`Limits::max_connections`] are
/// open at once. The other limits are the router's (see
/// [`router`](super::router)).
///
/// # Errors
///
/// If `limits` is invalid ([`Limits::validate`]). Errors accepting a
/// connection (such as running out of file descriptors) are logged and
/// retried after a pause, not returned.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    limits.validate()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut at_cap = false;
    tokio::pin!(shutdown);
    loop {
        // Take a connection slot first, so that past the cap nothing is
        // accepted: the kernel's backlog holds the rest.
        let permit = if slots.available_permits() == 0 {
            if !at_cap {
                at_cap = true;
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection cap reached; new connections wait until one closes"
                );
            }
            tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => p,
                () = &mut shutdown => break,
            }
        } else {
            at_cap = false;
            Arc::clone(&slots).acquire_owned().await
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}; retrying in 100ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_named() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let cases: [(Limits, &str); 6] = [
            (
                Limits {
                    header_read_timeout: Duration::ZERO,
                    ..Limits::default()
                },
                "header_read_timeout: 0s is out of range; use 100ms to 10m",
            ),
            (
                Limits {
                    request_timeout: Duration::from_secs(7200),
                    ..Limits::default()
                },
                "request_timeout: 2h is out of range; use 100ms to 1h",
            ),
            (
                Limits {
                    max_connections: 0,
                    ..Limits::default()
                },
                "max_connections: 0 is out of range; use 1 to 65536",
            ),
            (
                Limits {
                    max_concurrent_requests: 100_000,
                    ..Limits::default()
                },
                "max_concurrent_requests: 100000 is out of range; use 1 to 65536",
            ),
            (
                Limits {
                    max_body_bytes: 10,
                    ..Limits::default()
                },
                "max_body_bytes: 10 is out of range; use 1024 to 67108864",
            ),
            (
                Limits {
                    max_body_bytes: 1 << 30,
                    ..Limits::default()
                },
                "max_body_bytes: 1073741824 is out of range; use 1024 to 67108864",
            ),
        ];
        for (l, want) in cases {
            assert_eq!(l.validate().unwrap_err(), want);
        }
    }
}
