//! Entry points for the loom models (`loom-tests/`), compiled only under
//! `--cfg quota_loom`.
//!
//! These are thin handles over the engine's own window and counter code, so
//! the models explore the real algorithms with explicit ticks; the rest of the
//! models go through [`Manager`](crate::Manager) and
//! [`QuotaTracker`](crate::QuotaTracker) with the loom tick clock
//! ([`Manager::advance_buckets`](crate::Manager::advance_buckets)).

use std::time::Duration;

use crate::clock::Now;
use crate::counter::Counter;
use crate::sync::AtomicU64;
use crate::throttle::{Limit, Shape, ThrottleState};
use crate::window::{Window, WindowHead};

/// One rate window with its own storage; ticks are given explicitly.
#[derive(Debug)]
pub struct LoomWindow {
    head: WindowHead,
    archived: AtomicU64,
    slots: Box<[AtomicU64]>,
}

const BUCKET_NANOS: u64 = 100_000_000;

impl LoomWindow {
    /// A window of `buckets` buckets of 100 ms.
    pub fn new(buckets: usize) -> LoomWindow {
        LoomWindow {
            head: WindowHead::default(),
            archived: AtomicU64::new(0),
            slots: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn window(&self) -> Window<'_> {
        let n = crate::clock::Divisor::new(self.slots.len() as u64);
        Window::new(
            &self.head,
            &self.archived,
            &self.slots,
            (1, 0, n),
            BUCKET_NANOS,
        )
    }

    fn now(tick: u64) -> Now {
        Now {
            tick,
            nanos: tick * BUCKET_NANOS,
        }
    }

    /// `Window::try_admit` at `tick`: the tick counted in, or what the window
    /// held when it refused.
    pub fn try_admit(&self, tick: u64, amount: u64, limit: u64) -> Result<u64, u64> {
        let mut now = Self::now(tick);
        self.window()
            .try_admit(&mut now, amount, limit)
            .map(|(tick, _added)| tick)
            .map_err(|r| r.used)
    }

    /// `Window::record` at `tick`: the tick counted in.
    pub fn record(&self, tick: u64, amount: u64) -> u64 {
        let mut now = Self::now(tick);
        self.window().record(&mut now, amount).0
    }

    /// `Window::unrecord`.
    pub fn unrecord(&self, tick: u64, amount: u64) {
        self.window().unrecord(tick, amount)
    }

    /// `Window::used` at `tick`.
    pub fn used(&self, tick: u64) -> u64 {
        self.window().used(Self::now(tick))
    }

    /// `Window::total`.
    pub fn total(&self) -> u64 {
        self.window().total()
    }
}

/// One count quota.
#[derive(Debug)]
pub struct LoomCounter(Counter);

impl Default for LoomCounter {
    fn default() -> Self {
        LoomCounter(Counter::new())
    }
}

impl LoomCounter {
    /// `Counter::try_acquire`.
    pub fn try_acquire(&self, n: u64, limit: i64) -> Result<(), u64> {
        self.0.try_acquire(n, limit).map(|_| ())
    }

    /// `Counter::release`.
    pub fn release(&self, n: u64) {
        self.0.release(n)
    }

    /// `Counter::get`.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl LoomWindow {
    /// The window's words, decoded, for assertion messages.
    pub fn dump(&self) -> String {
        use crate::sync::Ordering;
        let slots: Vec<String> = self
            .slots
            .iter()
            .map(|s| {
                let v = s.load(Ordering::SeqCst);
                format!(
                    "(stamp {} sealed {} count {})",
                    v >> 40,
                    (v >> 39) & 1,
                    v & ((1 << 39) - 1)
                )
            })
            .collect();
        format!("{} slots {slots:?}", self.head.dump())
    }
}

/// One tenant's throttle words, with one limited rate (the bytes) of window
/// limit `limit` over windows of `buckets` buckets of 100 ms; ticks are given
/// explicitly.
#[derive(Debug)]
pub struct LoomThrottle {
    state: ThrottleState,
    limit: u64,
    buckets: u64,
}

impl LoomThrottle {
    /// Words for a bytes limit of `limit` per window of `buckets` buckets.
    pub fn new(limit: u64, buckets: u64) -> LoomThrottle {
        LoomThrottle {
            state: ThrottleState::default(),
            limit,
            buckets,
        }
    }

    /// `ThrottleState::throttle` of `bytes` at the start of `tick`, the other
    /// rates unlimited; the delay (cap: 1 hour).
    pub fn throttle(&self, tick: u64, bytes: u64) -> Duration {
        let shape = Shape {
            buckets: self.buckets,
            bucket_nanos: BUCKET_NANOS,
            max_throttle: Duration::from_secs(3600),
        };
        self.state.throttle(
            LoomWindow::now(tick),
            [bytes, 0, 1],
            [
                Limit::Window(self.limit),
                Limit::Unlimited,
                Limit::Unlimited,
            ],
            shape,
        )
    }

    /// The bytes rate's word: its tick and backlog (amount × buckets). Read
    /// with no call in flight.
    pub fn backlog(&self) -> (u64, u64) {
        self.state.backlog(0)
    }
}

/// The cluster sync's side of the activity feed, for the models: attach the
/// hooks, drain the feed, watch a tenant again, read its request total.
#[derive(Debug)]
pub struct LoomFeed;

impl LoomFeed {
    /// Attaches the cluster hooks: every tenant is watched from now on.
    pub fn attach(m: &crate::Manager) {
        m.attach_cluster();
    }

    /// The ids fed since the last drain.
    pub fn drain(m: &crate::Manager) -> Vec<String> {
        let hooks = m.cluster_hooks().expect("attached");
        std::iter::from_fn(|| hooks.pop())
            .map(|id| id.to_string())
            .collect()
    }

    /// Watches `id` again, as the sync does when it lets a tenant go.
    pub fn rewatch(m: &crate::Manager, id: &str) {
        m.get_tracker(id).expect("exists").rewatch();
    }

    /// Whether `id` is watched (no call since the last rewatch).
    pub fn is_watched(m: &crate::Manager, id: &str) -> bool {
        m.get_tracker(id).expect("exists").is_watched()
    }

    /// Requests admitted over the tenant's life, as the sync reads them.
    pub fn requests(m: &crate::Manager, id: &str) -> u64 {
        m.get_tracker(id).expect("exists").rate_snapshot().totals[2]
    }
}
