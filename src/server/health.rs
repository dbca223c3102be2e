//! What a Redis follower reports about itself, for `/metrics` and
//! `/healthz`: whether Redis answers, and how far behind the store the
//! engine is.
//!
//! The follower writes a [`FollowerStatus`]; `/metrics` ([`Metrics::with_follower`])
//! and `/healthz` ([`ApiState::with_follower`]) read it, without a lock.
//! Every field is one atomic, read and written `SeqCst`; a reader may see
//! one field of a step before another, which a metric can live with.
//!
//! [`Metrics::with_follower`]: super::Metrics::with_follower
//! [`ApiState::with_follower`]: super::ApiState::with_follower

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A follower's health, shared with whatever shows it: cheap to clone (an
/// `Arc`), read without locking. Get one from `Follower::status` (feature
/// `cluster`).
///
/// - [`redis_up`](FollowerStatus::redis_up): the follower's last command
///   to Redis was answered. While Redis answers, the follower sends one at
///   least every half second; a stopped or unreachable Redis is noticed
///   within about two seconds.
/// - [`applied_version`](FollowerStatus::applied_version): the version of
///   the last change applied to the engine.
/// - [`store_version`](FollowerStatus::store_version): the store's version
///   counter (the version of its last change) as last read, before each
///   read of the change stream.
/// - [`lag_versions`](FollowerStatus::lag_versions): `store_version -
///   applied_version` (0 if negative): changes made but not applied yet,
///   as of the last read.
/// - [`lag`](FollowerStatus::lag): zero while Redis is up and the
///   follower has applied every change the store held at its last read;
///   otherwise the time since the last instant at which it had (or since
///   the follower started, if never). The engine holds every change made
///   up to that instant, so this bounds how stale its tenants are.
#[derive(Clone, Debug)]
pub struct FollowerStatus(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The instant the `*_at` fields count from.
    origin: Instant,
    redis_up: AtomicBool,
    applied: AtomicU64,
    store: AtomicU64,
    /// Nanoseconds from `origin` to the last instant at which every change
    /// in the store was applied.
    caught_up_at: AtomicU64,
}

impl FollowerStatus {
    /// A follower that has not reached Redis yet and applied nothing.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn new() -> FollowerStatus {
        FollowerStatus(Arc::new(Inner {
            origin: Instant::now(),
            redis_up: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            store: AtomicU64::new(0),
            caught_up_at: AtomicU64::new(0),
        }))
    }

    /// Whether the follower's last command to Redis was answered.
    pub fn redis_up(&self) -> bool {
        self.0.redis_up.load(SeqCst)
    }

    /// The version of the last change applied to the engine (0 before any).
    pub fn applied_version(&self) -> u64 {
        self.0.applied.load(SeqCst)
    }

    /// The store's version counter as the follower last read it (0 before
    /// it has).
    pub fn store_version(&self) -> u64 {
        self.0.store.load(SeqCst)
    }

    /// Changes in the store not applied yet, as of the last read.
    pub fn lag_versions(&self) -> u64 {
        self.store_version().saturating_sub(self.applied_version())
    }

    /// How long the engine may have been missing changes: zero while Redis
    /// is up and every change the store held at the follower's last read
    /// is applied, else the time since the last instant at which it was.
    pub fn lag(&self) -> Duration {
        if self.redis_up() && self.lag_versions() == 0 {
            return Duration::ZERO;
        }
        let at = Duration::from_nanos(self.0.caught_up_at.load(SeqCst));
        self.0.origin.elapsed().saturating_sub(at)
    }
}

/// The follower's side.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
impl FollowerStatus {
    pub(crate) fn set_redis_up(&self, up: bool) {
        self.0.redis_up.store(up, SeqCst);
    }

    pub(crate) fn set_applied(&self, version: u64) {
        self.0.applied.store(version, SeqCst);
    }

    /// The store's counter read at `read_at`; if every change up to it is
    /// applied, the engine was caught up at that instant.
    pub(crate) fn set_store(&self, version: u64, read_at: Instant) {
        self.0.store.store(version, SeqCst);
        self.check_caught_up(read_at);
    }

    /// After applying: caught up as of `read_at` (when the store's counter
    /// was read) if every change up to the counter is applied.
    pub(crate) fn check_caught_up(&self, read_at: Instant) {
        if self.applied_version() >= self.store_version() {
            let nanos = read_at.saturating_duration_since(self.0.origin).as_nanos();
            self.0
                .caught_up_at
                .fetch_max(u64::try_from(nanos).unwrap_or(u64::MAX), SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_zero_only_while_up_and_caught_up() {
        let s = FollowerStatus::new();
        assert!(!s.redis_up());
        let read_at = Instant::now();
        s.set_redis_up(true);
        s.set_store(3, read_at);
        assert_eq!(s.lag_versions(), 3);
        assert!(s.lag() >= read_at.saturating_duration_since(s.0.origin));
        s.set_applied(3);
        s.check_caught_up(read_at);
        assert_eq!((s.lag_versions(), s.lag()), (0, Duration::ZERO));
        // Redis gone: the lag counts from the last instant it was caught up.
        s.set_redis_up(false);
        let lag = s.lag();
        assert!(lag <= read_at.elapsed(), "{lag:?}");
        // A counter behind the applied version (a replaced data set) is no lag.
        s.set_redis_up(true);
        s.set_store(2, Instant::now());
        assert_eq!((s.lag_versions(), s.lag()), (0, Duration::ZERO));
    }

    #[test]
    fn metrics_show_the_follower_only_when_given_one() {
        use crate::server::{Alerts, Metrics};
        use crate::Manager;
        let metrics = || Metrics::new(Arc::new(Manager::new()), Arc::new(Alerts::new()));
        assert!(!metrics().render().contains("streambus_redis_up"));
        let s = FollowerStatus::new();
        s.set_applied(7);
        s.set_store(9, Instant::now());
        let text = metrics().with_follower(s).render();
        for line in [
            "streambus_redis_up 0\n",
            "streambus_follower_applied_version 7\n",
            "streambus_follower_lag_versions 2\n",
            "# TYPE streambus_follower_lag_seconds gauge\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
    }
}
