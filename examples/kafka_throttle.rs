//! Throttle mode as a Kafka broker uses it: every produce is recorded and
//! answered with `throttle_time_ms`, and the connection is muted for that
//! long (no requests read from it) instead of the produce being refused.
//!
//! A tenant with a 100 KiB/s quota (1 s window of 10 buckets) is offered
//! 64 KiB batches as fast as the broker lets it, on the mock clock: the first
//! second's burst is free (one window's worth), then the client is held to
//! its quota whatever it sends; a batch of five windows' worth at once waits
//! 4 s; and a batch far over the 30 s cap is answered 30 s again and again
//! until its debt has drained.
//!
//! Run: `cargo run --release --example kafka_throttle`

use std::sync::Arc;
use std::time::Duration;

use streambus_tenancy::{Error, Manager, QuotaTracker, Quotas};

const KIB: u64 = 1024;

/// What the broker keeps per client connection.
struct Connection {
    tracker: Arc<QuotaTracker>,
    /// Requests are not read from the socket before this instant (the mock
    /// clock's nanoseconds): Kafka's channel mute.
    muted_until: u64,
}

/// A produce answer's header fields that matter here.
#[derive(Debug)]
struct ProduceResponse {
    throttle_time_ms: u32,
}

struct Broker {
    tenancy: Arc<Manager>,
    clock: quanta::Clock,
}

impl Broker {
    fn now(&self) -> u64 {
        self.clock.raw()
    }

    fn accept(&self, tenant: &str) -> Result<Connection, Error> {
        Ok(Connection {
            tracker: self.tenancy.get_tracker(tenant)?,
            muted_until: 0,
        })
    }

    /// Whether the broker reads the connection's next request now.
    fn readable(&self, conn: &Connection) -> bool {
        self.now() >= conn.muted_until
    }

    /// `HandleProduceRequest`: append, record, answer with the delay, mute.
    fn handle_produce(
        &self,
        conn: &mut Connection,
        batch: &[u8],
    ) -> Result<ProduceResponse, Error> {
        // ... append `batch` to the log here: throttle mode never refuses ...
        let delay = conn.tracker.throttle_produce(batch.len() as u64, 1)?;
        conn.muted_until = self.now() + delay.as_nanos() as u64;
        Ok(ProduceResponse {
            throttle_time_ms: delay.as_millis().min(u128::from(u32::MAX)) as u32,
        })
    }
}

fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn main() -> Result<(), Error> {
    let (clock, mock) = quanta::Clock::mock();
    let tenancy = Arc::new(Manager::builder().clock(clock.clone()).build());
    tenancy.create_tenant(
        "acme",
        "ACME",
        Quotas {
            max_bytes_per_second: 100 * KIB as i64,
            ..Quotas::unlimited()
        },
    )?;
    let broker = Broker {
        tenancy: tenancy.clone(),
        clock,
    };
    let mut conn = broker.accept("acme")?;

    println!("acme: 100 KiB/s, window 1 s of 10 buckets, max_throttle 30 s");
    println!("a client producing 64 KiB batches as fast as it is read, for 10 s:");
    let batch = vec![0u8; 64 * KIB as usize];
    let (mut bytes, mut requests) = (0u64, 0u32);
    let step = Duration::from_millis(10);
    while broker.now() < 10_000_000_000 {
        if broker.readable(&conn) {
            let at = broker.now();
            let answer = broker.handle_produce(&mut conn, &batch)?;
            bytes += batch.len() as u64;
            requests += 1;
            if requests <= 6 || requests % 4 == 0 {
                println!(
                    "  t={:>5.2}s  produce 64 KiB -> throttle_time_ms {:>4}",
                    secs(at),
                    answer.throttle_time_ms
                );
            }
        }
        mock.increment(step);
    }
    // Admitted within 10 s: at most the quota times the span plus one window.
    let span = secs(conn.muted_until.max(broker.now()));
    println!(
        "  {requests} batches, {} KiB over {span:.2} s: {:.1} KiB/s (quota 100, plus one window's burst)",
        bytes / KIB,
        bytes as f64 / KIB as f64 / span
    );
    assert!(bytes as f64 <= (100.0 * span + 100.0) * KIB as f64);

    // A greedy batch of five windows' worth at once: recorded, and 4 s of
    // mute for it (the debt is carried past the window, not forgotten).
    mock.increment(Duration::from_secs(60));
    let big = vec![0u8; 500 * KIB as usize];
    let answer = broker.handle_produce(&mut conn, &big)?;
    println!(
        "after a minute idle, one 500 KiB batch -> throttle_time_ms {}",
        answer.throttle_time_ms
    );
    assert_eq!(answer.throttle_time_ms, 4000);

    // Far over the cap: 30 s (a Kafka client's request.timeout.ms), and the
    // debt stays: the next batch after the mute is muted again.
    mock.increment(Duration::from_secs(60));
    let huge = vec![0u8; 8 * 1024 * KIB as usize];
    let first = broker.handle_produce(&mut conn, &huge)?;
    mock.increment(Duration::from_millis(u64::from(first.throttle_time_ms)));
    let again = broker.handle_produce(&mut conn, &batch)?;
    println!(
        "one 8 MiB batch -> throttle_time_ms {} (capped); 64 KiB after waiting it -> {} (debt kept)",
        first.throttle_time_ms, again.throttle_time_ms
    );
    assert_eq!(first.throttle_time_ms, 30_000);
    assert!(again.throttle_time_ms > 0);

    let usage = tenancy.get_usage("acme")?;
    println!(
        "usage now (everything was recorded): {} B/s over the window",
        usage.bytes_per_second
    );
    Ok(())
}
