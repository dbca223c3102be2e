//! `/metrics` as a streamed body: one render at a time, on the blocking
//! pool, handed to the connection a chunk at a time.
//!
//! A scrape waits for the render in progress up to [`SCRAPE_WAIT`], then is
//! refused ([`Busy`], a 503). Its render runs on tokio's blocking pool and
//! writes into a [`ChunkSink`], which hands 64 KiB chunks to the response
//! body through a channel of [`CHUNKS_AHEAD`] places: when the connection
//! is slower than the render, the render waits, so a scrape's buffers stay
//! under 400 KiB however large the text. The render keeps the one place to
//! render (a semaphore permit) until it has handed its last chunk over, or
//! stopped: because the client went away, or took nothing for
//! [`STALL_LIMIT`], in which case the body ends with an error so the client
//! never takes a cut-off text for a whole one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::channel::{Channel, Sender};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use super::metrics::Metrics;

/// How long a scrape waits for the render in progress before it is answered
/// 503; also its `Retry-After`.
const SCRAPE_WAIT: Duration = Duration::from_secs(5);
/// A render stops, cutting its response off with an error, when the client
/// has taken nothing for this long.
const STALL_LIMIT: Duration = Duration::from_secs(30);
/// Bytes handed to the connection at a time.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks rendered ahead of the connection.
const CHUNKS_AHEAD: usize = 4;
/// Room for a chunk and the last piece written into it.
const SINK_CAPACITY: usize = CHUNK_BYTES + 8 * 1024;

/// The one place to render, and how long to wait for it.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    wait: Duration,
    stall_limit: Duration,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(1)),
            wait: SCRAPE_WAIT,
            stall_limit: STALL_LIMIT,
        }
    }
}

impl Metrics {
    /// The `/metrics` body: waits for the render in progress, then renders
    /// on the blocking pool into a body that streams the text as it comes.
    pub(crate) async fn scrape(self: Arc<Self>) -> Result<Body, Busy> {
        let gate = self.gate();
        let wait = gate.wait;
        let permit =
            match tokio::time::timeout(wait, Arc::clone(&gate.permits).acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                // Timed out; the semaphore is never closed.
                _ => return Err(Busy { waited: wait }),
            };
        let (tx, body) = Channel::new(CHUNKS_AHEAD);
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            // Dropped last: the next render starts once this one has handed
            // its last chunk over, or stopped.
            let _permit = permit;
            let mut sink = ChunkSink::new(tx, runtime, self.gate().stall_limit);
            if self.render_to(&mut sink).is_ok() {
                sink.finish();
            }
        });
        Ok(Body::new(body))
    }
}

/// A scrape refused because another kept the renderer busy.
#[derive(Debug)]
pub(crate) struct Busy {
    waited: Duration,
}

impl Busy {
    /// Seconds to wait before trying again.
    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.waited.as_secs().max(1)
    }
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "another scrape kept the metrics renderer busy for {} s; try again later",
            self.waited.as_secs()
        )
    }
}

/// Why a streamed response was cut off.
#[derive(Debug)]
enum RenderStopped {
    Stalled(Duration),
    Failed,
}

impl fmt::Display for RenderStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderStopped::Stalled(d) => write!(
                f,
                "the metrics render stopped: the client took nothing for {} s",
                d.as_secs()
            ),
            RenderStopped::Failed => f.write_str("the metrics render failed"),
        }
    }
}

impl std::error::Error for RenderStopped {}

/// Where the blocking render writes: fills a chunk, hands it to the
/// response body, waits while the body has [`CHUNKS_AHEAD`] queued.
struct ChunkSink {
    /// `None` once the client went away or the body was cut off.
    tx: Option<Sender<Bytes, RenderStopped>>,
    buf: String,
    runtime: Handle,
    stall_limit: Duration,
}

impl ChunkSink {
    fn new(tx: Sender<Bytes, RenderStopped>, runtime: Handle, stall_limit: Duration) -> ChunkSink {
        ChunkSink {
            tx: Some(tx),
            buf: String::with_capacity(SINK_CAPACITY),
            runtime,
            stall_limit,
        }
    }

    fn send(&mut self) -> fmt::Result {
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(SINK_CAPACITY));
        let tx = self.tx.as_mut().ok_or(fmt::Error)?;
        // On the blocking pool, so blocking on the runtime is allowed.
        let sent = self.runtime.block_on(tokio::time::timeout(
            self.stall_limit,
            tx.send_data(Bytes::from(chunk)),
        ));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                tracing::debug!("metrics client went away during the render");
                self.tx = None;
                Err(fmt::Error)
            }
            Err(_) => {
                tracing::warn!(
                    stall_secs = self.stall_limit.as_secs(),
                    "metrics client took nothing for too long; response cut off"
                );
                if let Some(tx) = self.tx.take() {
                    tx.abort(RenderStopped::Stalled(self.stall_limit));
                }
                Err(fmt::Error)
            }
        }
    }

    /// Sends what is left and ends the body cleanly.
    fn finish(mut self) {
        if self.buf.is_empty() || self.send().is_ok() {
            // Dropping the sender ends the body.
            self.tx = None;
        }
    }
}

impl fmt::Write for ChunkSink {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(())
    }
}

impl Drop for ChunkSink {
    fn drop(&mut self) {
        // Not finished (the render failed or panicked): end the body with an
        // error, so the client never takes a cut-off text for a whole one.
        if let Some(tx) = self.tx.take() {
            tx.abort(RenderStopped::Failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::server::Alerts;
    use crate::{Manager, Quotas};

    /// Metrics over `n` tenants (about 3.7 KB of text each) on a frozen
    /// clock, so that two renders agree, with these limits.
    fn metrics(n: usize, wait: Duration, stall_limit: Duration) -> Arc<Metrics> {
        let m = Arc::new(Manager::builder().clock(quanta::Clock::mock().0).build());
        for i in 0..n {
            let id = format!("tenant-{i:05}");
            m.create_tenant(&id, &id, Quotas::default()).unwrap();
            m.enforce_produce_quota(&id, 100, 1).unwrap();
        }
        let mut metrics = Metrics::new(m, Arc::new(Alerts::new()));
        let gate = metrics.gate_mut();
        (gate.wait, gate.stall_limit) = (wait, stall_limit);
        Arc::new(metrics)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_streamed_body_is_the_rendered_text() {
        let m = metrics(300, SCRAPE_WAIT, STALL_LIMIT);
        let text = m.render();
        assert!(text.len() > 3 * CHUNK_BYTES, "{} bytes", text.len());
        let body = runtime().block_on(async {
            let body = Arc::clone(&m).scrape().await.unwrap();
            body.collect().await.unwrap().to_bytes()
        });
        assert_eq!(std::str::from_utf8(&body).unwrap(), text);
    }

    #[test]
    fn a_scrape_waits_for_the_one_rendering_then_gets_busy() {
        let m = metrics(1, Duration::from_millis(50), STALL_LIMIT);
        let rt = runtime();
        let rendering = Arc::clone(&m.gate().permits).try_acquire_owned().unwrap();
        let busy = rt.block_on(Arc::clone(&m).scrape()).unwrap_err();
        assert_eq!(busy.retry_after_secs(), 1);
        assert!(busy.to_string().contains("try again later"), "{busy}");
        drop(rendering);
        assert!(rt.block_on(Arc::clone(&m).scrape()).is_ok());
    }

    #[test]
    fn a_client_that_goes_away_frees_the_renderer() {
        let m = metrics(300, SCRAPE_WAIT, STALL_LIMIT);
        runtime().block_on(async {
            // Never read: the render fills the queue and waits for the body.
            let first = Arc::clone(&m).scrape().await.unwrap();
            drop(first);
            let second = Arc::clone(&m).scrape().await.unwrap();
            let text = second.collect().await.unwrap().to_bytes();
            assert_eq!(text.len(), m.render().len());
        });
    }

    #[test]
    fn a_stalled_client_gets_an_error_not_a_short_body() {
        let m = metrics(300, SCRAPE_WAIT, Duration::from_millis(100));
        runtime().block_on(async {
            let stalled = Arc::clone(&m).scrape().await.unwrap();
            // The next scrape gets the renderer once the stalled one is cut off.
            let next = Arc::clone(&m).scrape().await.unwrap();
            let err = stalled.collect().await.unwrap_err();
            assert!(err.to_string().contains("took nothing"), "{err}");
            assert!(next.collect().await.is_ok());
        });
    }
}
