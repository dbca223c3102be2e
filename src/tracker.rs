//! The per-tenant hot-path handle: quotas, rate windows, counts and status.
//!
//! A broker looks a tenant up once per connection with
//! [`Manager::get_tracker`](crate::Manager::get_tracker) and then calls the
//! tracker directly, skipping the map lookup on every produce.
//!
//! # Orderings
//!
//! - `state` is stored with `Release` by suspend/activate/delete and loaded with
//!   `Acquire` at the start of every admission: a thread that learns (through
//!   any synchronisation) that `suspend_tenant` returned sees `Suspended` in
//!   every later admission. Admissions already past the check when the store
//!   lands complete; they started before the suspension returned.
//! - Quotas are read once per call from the [`QuotaCell`]: the rate limits
//!   from its sequence-locked copy, the rest from an `ArcSwap` snapshot, so a
//!   call decides every quota from one version.
//! - Windows and counters document their own protocols (`window.rs`,
//!   `counter.rs`).

use std::time::Duration;

use crate::clock::{Now, TickClock};
use crate::counter::Counter;
use crate::quotas::QuotaCell;
use crate::sync::{AtomicU32, AtomicU64, AtomicU8, Ordering, StdArc};
use crate::tenant::TenantInfo;
use crate::throttle::{Limit, ThrottleState};
use crate::window::{Fast, Refused, Window, WindowHead};
use crate::{Error, HeldUsage, QuotaError, QuotaType, Quotas, TenantStatus, Usage};

const BYTES: usize = 0;
const MESSAGES: usize = 1;
const REQUESTS: usize = 2;
/// The window of connections opened (`max_connection_creation_rate`).
const OPENED: usize = 3;
/// Rate windows per tenant: bytes, messages, requests, connections opened.
const WINDOWS: usize = 4;
/// The slot of `QuotaTracker::refusals` counting refusals of a tenant not active.
const NOT_ACTIVE: usize = QuotaType::COUNT;
const RATE_TYPES: [QuotaType; 3] = [
    QuotaType::BytesPerSecond,
    QuotaType::MessagesPerSecond,
    QuotaType::RequestsPerSecond,
];

/// Set in the status byte while a cluster sync wants to hear of the
/// tenant's next call (see `cluster_hooks.rs`).
const WATCHED: u8 = 0x80;

/// What [`QuotaTracker::rate_snapshot`] reads, per rate window (bytes,
/// messages, requests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
pub(crate) struct RateSnapshot {
    /// Admitted over the tracker's life.
    pub(crate) totals: [u64; 3],
    /// In the window now.
    pub(crate) in_window: [u64; 3],
    /// Calls refused by this rate over the tracker's life (32-bit counters).
    pub(crate) refused: [u64; 3],
}

/// A count quota (`-1`: unlimited) lowered to `lease` if one is given.
#[inline]
fn within(quota: i64, lease: Option<u64>) -> i64 {
    match lease {
        Some(l) if quota < 0 || l < quota as u64 => l.min(i64::MAX as u64) as i64,
        _ => quota,
    }
}

/// The held-count quotas, in the order of `QuotaTracker::counts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    Connections = 0,
    Producers = 1,
    Consumers = 2,
    ConsumerGroups = 3,
    Topics = 4,
    Partitions = 5,
}

impl Held {
    pub(crate) const ALL: [Held; 6] = [
        Held::Connections,
        Held::Producers,
        Held::Consumers,
        Held::ConsumerGroups,
        Held::Topics,
        Held::Partitions,
    ];

    /// This count in `held`.
    pub(crate) const fn of(self, held: &HeldUsage) -> u64 {
        match self {
            Held::Connections => held.connections,
            Held::Producers => held.producers,
            Held::Consumers => held.consumers,
            Held::ConsumerGroups => held.consumer_groups,
            Held::Topics => held.topics,
            Held::Partitions => held.partitions,
        }
    }

    pub(crate) const fn quota_type(self) -> QuotaType {
        match self {
            Held::Connections => QuotaType::Connections,
            Held::Producers => QuotaType::Producers,
            Held::Consumers => QuotaType::Consumers,
            Held::ConsumerGroups => QuotaType::ConsumerGroups,
            Held::Topics => QuotaType::Topics,
            Held::Partitions => QuotaType::Partitions,
        }
    }
}

/// Per-tenant quota enforcement and usage tracking.
///
/// Every method takes `&self` and may be called from any number of threads at
/// once. Admissions (`enforce_*`, `add_*`, `check_*`) allocate nothing, on
/// success and on a quota refusal alike.
// Layout: everything an admission that does not rotate reads (the status,
// the clock, the rate limits and the three windows' head, epoch and base)
// comes first, in declaration order (`repr(C)`): 128 bytes, three cache
// lines at most (aligning the struct to 64 bytes would make it two, but it
// pads the `Arc` header to 64 bytes, a tenant past 1 KiB, for no wall-clock
// difference measured; see BENCHMARKS.md). The lifetime
// totals and the slots follow inline, so a rotation reaches the one or two
// lines of slots it writes from the tracker's own address, without first
// loading a pointer to another allocation.
#[repr(C)]
pub struct QuotaTracker {
    state: AtomicU8,
    clock: StdArc<TickClock>,
    quotas: QuotaCell,
    /// The produce path's windows: bytes, messages, requests.
    heads: [WindowHead; 3],
    // ---- 128 bytes: the rest is read on rotations, counts and reports.
    /// Each window's lifetime total less its open head (see `Window`).
    archived: [AtomicU64; WINDOWS],
    slots: Slots,
    /// The window of connections opened, read only when a connection is
    /// added (after the slots, so that a rotation of the produce path finds
    /// its slots as close to the hot words as with three windows).
    opened: WindowHead,
    /// The throttle calls' backlogs (see `throttle.rs`): 32 bytes.
    throttle: ThrottleState,
    id: StdArc<str>,
    counts: [Counter; 6],
    storage: Counter,
    /// Refusals by `QuotaType` index (`QuotaType::ALL` order), then one slot
    /// for refusals because the tenant was not active. Written on refusal only.
    /// 32 bits each (they wrap after 2^32 refusals, which a Prometheus
    /// `rate()` reads as a counter reset): 52 bytes a tenant less than 64.
    refusals: [AtomicU32; QuotaType::COUNT + 1],
    pub(crate) info: arc_swap::ArcSwap<TenantInfo>,
}

impl std::fmt::Debug for QuotaTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaTracker")
            .field("id", &&*self.id)
            .field("status", &self.status())
            .field("quotas", &self.quotas.get())
            .finish_non_exhaustive()
    }
}

impl QuotaTracker {
    pub(crate) fn new(
        id: StdArc<str>,
        quotas: Quotas,
        clock: StdArc<TickClock>,
        info: TenantInfo,
    ) -> QuotaTracker {
        let n = clock.geometry().buckets as usize;
        QuotaTracker {
            id,
            state: AtomicU8::new(TenantStatus::Active.to_u8()),
            quotas: QuotaCell::new(quotas),
            heads: Default::default(),
            archived: Default::default(),
            opened: WindowHead::default(),
            throttle: ThrottleState::default(),
            slots: Slots::new(WINDOWS * n),
            counts: Default::default(),
            storage: Counter::new(),
            refusals: Default::default(),
            clock,
            info: arc_swap::ArcSwap::from_pointee(info),
        }
    }

    /// The tenant's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenant's status as this handle sees it (`Deleted` once removed).
    pub fn status(&self) -> TenantStatus {
        TenantStatus::from_u8(self.state.load(Ordering::Acquire) & !WATCHED)
    }

    /// The quotas in force.
    pub fn quotas(&self) -> Quotas {
        self.quotas.get()
    }

    pub(crate) fn id_arc(&self) -> &StdArc<str> {
        &self.id
    }

    /// Moves the status to `to` if it is currently one of `from`.
    ///
    /// `Deleted` is terminal: nothing moves a tracker out of it, so a suspend
    /// or activate racing a delete cannot revive a removed tenant's handles.
    /// Returns the status found.
    pub(crate) fn transition(
        &self,
        from: &[TenantStatus],
        to: TenantStatus,
    ) -> Result<(), TenantStatus> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let status = TenantStatus::from_u8(cur & !WATCHED);
            if !from.contains(&status) {
                return Err(status);
            }
            // The cluster sync's `WATCHED` bit is kept across transitions.
            let new = to.to_u8() | (cur & WATCHED);
            // AcqRel: the release half pairs with the Acquire load in
            // `check_active`; a later admission sees the new status.
            match self
                .state
                .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn set_quotas(&self, quotas: Quotas) {
        match self.clock.cluster() {
            // Under a cluster sync a new quota starts at the share of a
            // tenant the sync does not follow; if it does follow it, its
            // next round sets the allowance.
            Some(hooks) => {
                let g = *self.clock.geometry();
                let caps = hooks.unfollowed_caps(&quotas, &g);
                self.quotas
                    .store_with(quotas, |q| crate::cluster_hooks::capped_rates(q, caps, &g));
            }
            None => self.quotas.store(quotas),
        }
    }

    #[inline]
    fn window(&self, rate: usize) -> Window<'_> {
        let geometry = self.clock.geometry();
        let n = geometry.buckets as usize;
        let slots = self.slots.get(WINDOWS * n);
        // The produce path's three windows interleaved (a tick's slots side
        // by side), then the connection window's, so that a rotation and a
        // sum of the produce path touch the same lines as with three windows.
        let (head, slots, layout) = if rate == OPENED {
            (&self.opened, &slots[3 * n..], (1, 0, geometry.per_window))
        } else {
            (
                &self.heads[rate],
                &slots[..3 * n],
                (3, rate, geometry.per_window),
            )
        };
        Window::new(
            head,
            &self.archived[rate],
            slots,
            layout,
            geometry.bucket_nanos,
        )
    }

    #[inline]
    fn check_active(&self) -> Result<(), Error> {
        // Acquire: pairs with the Release store in `set_status`.
        let s = self.state.load(Ordering::Acquire);
        if s == TenantStatus::Active.to_u8() {
            Ok(())
        } else {
            self.check_active_slow(s)
        }
    }

    /// A status byte other than `Active`: not active, or active and watched
    /// by a cluster sync that wants to hear of this call (see
    /// `cluster_hooks.rs`).
    #[cold]
    #[inline(never)]
    fn check_active_slow(&self, s: u8) -> Result<(), Error> {
        if s != TenantStatus::Active.to_u8() | WATCHED {
            return Err(self.not_active(s & !WATCHED));
        }
        self.feed_if_watched();
        Ok(())
    }

    // ----- cluster sync ----------------------------------------------------

    /// The manager's window geometry.
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn clock_geometry(&self) -> &crate::clock::Geometry {
        self.clock.geometry()
    }

    /// Watches the tenant again: its next call tells the cluster sync.
    pub(crate) fn rewatch(&self) {
        // AcqRel: pairs with the `fetch_and` in `check_active_slow`.
        self.state.fetch_or(WATCHED, Ordering::AcqRel);
    }

    /// Whether a call cleared the `WATCHED` bit (the tenant had traffic).
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn is_watched(&self) -> bool {
        self.state.load(Ordering::Acquire) & WATCHED != 0
    }

    /// Sets the hot path's rate limits to the quotas capped at `caps`
    /// (window units: what each window may hold; `None` keeps the quota).
    pub(crate) fn cap_rates(&self, caps: [Option<u64>; 3]) {
        let g = *self.clock.geometry();
        self.quotas
            .recap(|q| crate::cluster_hooks::capped_rates(q, caps, &g));
    }

    /// The rate windows' lifetime totals and current contents, and the rate
    /// refusals so far: what the cluster sync reports and decides from.
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn rate_snapshot(&self) -> RateSnapshot {
        let now = self.clock.now();
        let mut snap = RateSnapshot::default();
        for (r, q) in RATE_TYPES.iter().enumerate() {
            let w = self.window(r);
            snap.totals[r] = w.total();
            snap.in_window[r] = w.used(now);
            snap.refused[r] = u64::from(self.refusals[q.index()].load(Ordering::Relaxed));
        }
        snap
    }

    #[cold]
    #[inline(never)]
    fn not_active(&self, s: u8) -> Error {
        // Relaxed: a monitoring counter, ordered by nothing.
        self.refusals[NOT_ACTIVE].fetch_add(1, Ordering::Relaxed);
        Error::TenantNotActive {
            id: self.id.to_string(),
            status: TenantStatus::from_u8(s),
        }
    }

    #[cold]
    #[inline(never)]
    fn quota_error(&self, quota_type: QuotaType, current: u64, limit: i64) -> Error {
        // Relaxed: a monitoring counter, ordered by nothing.
        self.refusals[quota_type.index()].fetch_add(1, Ordering::Relaxed);
        Error::QuotaExceeded(QuotaError {
            tenant_id: StdArc::clone(&self.id),
            quota_type,
            current: current.min(i64::MAX as u64) as i64,
            limit,
            retry_after: None,
        })
    }

    // ----- rates -----------------------------------------------------------

    /// Admits bytes, messages and requests all-or-nothing.
    #[inline]
    fn admit_rates(&self, amounts: [u64; 3]) -> Result<(), Error> {
        self.check_active()?;
        // One version of the three rate quotas, read without a guard.
        let limits = self.quotas.rates();
        let geometry = self.clock.geometry();
        let mut now = self.clock.now();
        // (tick, amount added) per window, for a roll-back.
        let mut counted = [(0u64, 0u64); 3];
        for rate in 0..3 {
            let amount = amounts[rate];
            let limit = if limits[rate] < 0 {
                if amount == 0 {
                    continue;
                }
                // Unlimited: counted for usage, never refused.
                u64::MAX
            } else {
                let limit = geometry.window_limit(limits[rate] as u64);
                if amount > limit {
                    self.rollback(&counted, rate);
                    return Err(self.rate_refusal(rate, None, &limits, amounts, now));
                }
                limit
            };
            let outcome = match self.heads[rate].admit_fast(now.tick, amount, limit) {
                Fast::Admitted(added) => Ok((now.tick, added)),
                Fast::Refused(refused) => Err(refused),
                Fast::Slow => self.admit_slow(rate, &mut now, amount, limit),
            };
            match outcome {
                Ok(c) => counted[rate] = c,
                Err(refused) => {
                    self.rollback(&counted, rate);
                    return Err(self.rate_refusal(rate, Some(refused), &limits, amounts, now));
                }
            }
        }
        Ok(())
    }

    /// The general admission (a rotation, a stale base, a lost race), out of
    /// line so the common case stays small.
    #[cold]
    #[inline(never)]
    fn admit_slow(
        &self,
        rate: usize,
        now: &mut Now,
        amount: u64,
        limit: u64,
    ) -> Result<(u64, u64), Refused> {
        self.window(rate).admit_general(now, amount, limit)
    }

    /// Takes back what windows `0..upto` added.
    #[inline]
    fn rollback(&self, counted: &[(u64, u64); 3], upto: usize) {
        for (rate, &(tick, added)) in counted.iter().enumerate().take(upto) {
            if added != 0 {
                self.window(rate).unrecord(tick, added);
            }
        }
    }

    /// Builds the refusal for the window `rate` (cold: refusals are rare per
    /// tenant, and building the answer reads every window once more).
    #[cold]
    #[inline(never)]
    fn rate_refusal(
        &self,
        rate: usize,
        refused: Option<Refused>,
        limits: &[i64; 3],
        amounts: [u64; 3],
        now: Now,
    ) -> Error {
        let geometry = *self.clock.geometry();
        let used = match refused {
            Some(r) => r.used,
            None => self.window(rate).used(now),
        };
        // The same call is admitted once every limited window has room for its
        // share; if one window can never hold its share, neither can the call.
        // The windows before `rate` had room (they admitted, then rolled
        // back); the refused one's content is known; the later ones are read.
        let mut retry = Some(Duration::ZERO);
        for r in rate..3 {
            if limits[r] < 0 {
                continue;
            }
            let limit = geometry.window_limit(limits[r] as u64);
            // A later window that has room for its share now adds nothing:
            // tell that from its head and base when they can.
            if r > rate && self.heads[r].fits_fast(now.tick, amounts[r], limit) == Some(true) {
                continue;
            }
            let known = (r == rate).then_some(used);
            retry = match (
                retry,
                self.window(r).retry_after(now, amounts[r], limit, known),
            ) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            if retry.is_none() {
                break;
            }
        }
        // Under a cluster sync `limits` holds this broker's allowance; the
        // error names the tenant's quota, as without one.
        let limit = match self.clock.cluster() {
            Some(_) => crate::quotas::rates_of(&self.quotas.load())[rate],
            None => limits[rate],
        };
        self.rate_error(RATE_TYPES[rate], geometry.per_second(used), limit, retry)
    }

    /// Admits a produce: one request plus `bytes` and `messages`, all or nothing.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] naming the first rate quota that refused (bytes,
    /// then messages, then requests) with `retry_after`;
    /// [`Error::TenantNotActive`] if the tenant is suspended or deleted.
    #[inline]
    pub fn enforce_produce(&self, bytes: u64, messages: u64) -> Result<(), Error> {
        self.admit_rates([bytes, messages, 1])
    }

    /// Admits a consume (fetch): one request plus `bytes` and `messages`, all
    /// or nothing, in the same windows as produce.
    ///
    /// # Errors
    ///
    /// As [`QuotaTracker::enforce_produce`].
    #[inline]
    pub fn enforce_consume(&self, bytes: u64, messages: u64) -> Result<(), Error> {
        self.admit_rates([bytes, messages, 1])
    }

    /// Admits one request of another kind (metadata, offsets, ...).
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `requests_per_second`;
    /// [`Error::TenantNotActive`].
    #[inline]
    pub fn enforce_request(&self) -> Result<(), Error> {
        self.admit_rates([0, 0, 1])
    }

    /// The seed's first step: would `bytes`, `messages` and one request fit?
    /// Records nothing.
    ///
    /// Check-then-record is racy by nature (two threads can both pass the
    /// check); prefer [`QuotaTracker::enforce_produce`], which decides and
    /// records in one atomic step.
    ///
    /// # Errors
    ///
    /// As [`QuotaTracker::enforce_produce`].
    pub fn check_throughput(&self, bytes: u64, messages: u64) -> Result<(), Error> {
        self.check_active()?;
        let limits = self.quotas.rates();
        let amounts = [bytes, messages, 1];
        let geometry = *self.clock.geometry();
        let now = self.clock.now();
        for rate in 0..3 {
            if limits[rate] < 0 {
                continue;
            }
            let limit = geometry.window_limit(limits[rate] as u64);
            let used = self.window(rate).used(now);
            if used.saturating_add(amounts[rate]) > limit {
                let refused = (amounts[rate] <= limit).then_some(Refused { used });
                return Err(self.rate_refusal(rate, refused, &limits, amounts, now));
            }
        }
        Ok(())
    }

    /// The seed's second step: records `bytes`, `messages` and one request
    /// without checking any limit (saturating, never wrapping).
    pub fn record_throughput(&self, bytes: u64, messages: u64) {
        self.record_rates(self.clock.now(), [bytes, messages, 1]);
    }

    /// Counts bytes, messages and requests without a limit (saturating),
    /// through each window's fast path first: the seed's record step, and
    /// what a throttle call records.
    #[inline]
    fn record_rates(&self, mut now: Now, amounts: [u64; 3]) {
        for (rate, amount) in amounts.into_iter().enumerate() {
            if amount == 0 {
                continue;
            }
            // An unlimited admission is never refused: admitted here, or
            // by the general loop.
            if self.heads[rate].admit_fast(now.tick, amount, u64::MAX) == Fast::Slow {
                let _ = self.admit_slow(rate, &mut now, amount, u64::MAX);
            }
        }
    }

    // ----- throttle --------------------------------------------------------

    /// Records bytes, messages and requests and answers the delay.
    #[inline]
    fn throttle_rates(&self, amounts: [u64; 3]) -> Result<Duration, Error> {
        self.check_active()?;
        let limits = self.quotas.rates();
        let geometry = self.clock.geometry();
        let now = self.clock.now();
        let limits = limits.map(|q| {
            if q < 0 {
                Limit::Unlimited
            } else {
                Limit::Window(geometry.window_limit(q as u64))
            }
        });
        let delay = self
            .throttle
            .throttle(now, amounts, limits, self.clock.throttle_shape());
        self.record_rates(now, amounts);
        Ok(delay)
    }

    /// Records a produce (one request plus `bytes` and `messages`) and
    /// answers how long to hold the client off: Kafka's `throttle_time_ms`
    /// instead of a refusal.
    ///
    /// The amounts are recorded whatever the answer, in the windows the
    /// refusing calls use (so usage, utilization, lifetime counters and
    /// later `enforce_*` calls see them), like
    /// [`QuotaTracker::record_throughput`]. The delay comes from a backlog
    /// per rate quota that only throttle calls advance (calls admitted by
    /// `enforce_*` are in the windows, not in the backlog), and it is:
    ///
    /// - `Duration::ZERO` as long as every call would have been admitted by
    ///   [`QuotaTracker::enforce_produce`] on its own history;
    /// - otherwise the smallest wait (to within one bucket) after which the
    ///   tenant's backlog is back within one window's worth of its quota;
    ///   the largest such wait over the rate quotas, at most the manager's
    ///   [`max_throttle`](crate::ManagerBuilder::max_throttle);
    /// - `max_throttle` for any non-zero amount against a quota of 0; an
    ///   unlimited quota never delays.
    ///
    /// Debt is carried past the window and is not forgiven by the cap: a
    /// client that waits every delay is admitted at most one window's worth
    /// plus quota × elapsed time over any span of at least a window.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambus_tenancy::{Manager, Quotas};
    ///
    /// let (clock, mock) = quanta::Clock::mock();
    /// let manager = Manager::builder().clock(clock).build();
    /// manager.create_tenant("t", "T", Quotas { max_messages_per_second: 10, ..Quotas::unlimited() })?;
    /// let tracker = manager.get_tracker("t")?;
    /// assert_eq!(tracker.throttle_produce(0, 30)?, Duration::from_secs(2));
    /// mock.increment(Duration::from_secs(2));
    /// assert_eq!(tracker.throttle_produce(0, 0)?, Duration::ZERO);
    /// # Ok::<(), streambus_tenancy::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotActive`] if the tenant is suspended or deleted
    /// (nothing is recorded). Never [`Error::QuotaExceeded`].
    #[inline]
    pub fn throttle_produce(&self, bytes: u64, messages: u64) -> Result<Duration, Error> {
        self.throttle_rates([bytes, messages, 1])
    }

    /// Records a consume (fetch) and answers how long to hold the client
    /// off; as [`QuotaTracker::throttle_produce`], in the same windows and
    /// backlogs.
    ///
    /// # Errors
    ///
    /// As [`QuotaTracker::throttle_produce`].
    #[inline]
    pub fn throttle_consume(&self, bytes: u64, messages: u64) -> Result<Duration, Error> {
        self.throttle_rates([bytes, messages, 1])
    }

    // ----- counts ----------------------------------------------------------

    #[inline]
    pub(crate) fn acquire(&self, held: Held) -> Result<(), Error> {
        self.acquire_within(held, None)
    }

    /// Takes one of `held` within its quota and, if given, within `lease`
    /// (a cluster sync's lease: what this broker may hold). A refusal names
    /// the quota either way.
    pub(crate) fn acquire_within(&self, held: Held, lease: Option<u64>) -> Result<(), Error> {
        if held == Held::Connections {
            return self.open_connection(lease);
        }
        self.check_active()?;
        let quota = self.quotas.load().get(held.quota_type());
        self.counts[held as usize]
            .try_acquire(1, within(quota, lease))
            .map(|_| ())
            .map_err(|current| self.quota_error(held.quota_type(), current, quota))
    }

    /// How many of `held` the tenant holds on this broker.
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn held(&self, held: Held) -> u64 {
        self.counts[held as usize].get()
    }

    /// Takes one connection: first one opening in the connection-creation
    /// window (`max_connection_creation_rate`), then one of the count
    /// (`max_connections`), both decided from one version of the quotas. A
    /// refusal by the count takes the opening back, so a refused connection
    /// does not use up the rate.
    fn open_connection(&self, lease: Option<u64>) -> Result<(), Error> {
        self.check_active()?;
        let q = self.quotas.load();
        let rate = q.max_connection_creation_rate;
        let geometry = *self.clock.geometry();
        let mut now = self.clock.now();
        let window = self.window(OPENED);
        let limit = if rate < 0 {
            u64::MAX
        } else {
            geometry.window_limit(rate as u64)
        };
        if limit == 0 {
            // One opening can never fit: refused without writing the window,
            // as `admit_rates` refuses an amount over its limit.
            let used = window.used(now);
            return Err(self.rate_error(
                QuotaType::ConnectionCreationRate,
                geometry.per_second(used),
                rate,
                None,
            ));
        }
        let counted = match window.try_admit(&mut now, 1, limit) {
            Ok(counted) => counted,
            Err(refused) => {
                let retry = window.retry_after(now, 1, limit, Some(refused.used));
                return Err(self.rate_error(
                    QuotaType::ConnectionCreationRate,
                    geometry.per_second(refused.used),
                    rate,
                    retry,
                ));
            }
        };
        let quota = q.max_connections;
        self.counts[Held::Connections as usize]
            .try_acquire(1, within(quota, lease))
            .map(|_| ())
            .map_err(|current| {
                let (tick, added) = counted;
                window.unrecord(tick, added);
                self.quota_error(QuotaType::Connections, current, quota)
            })
    }

    /// A rate refusal with its `retry_after`.
    #[cold]
    #[inline(never)]
    fn rate_error(
        &self,
        quota_type: QuotaType,
        per_second: u64,
        limit: i64,
        retry_after: Option<Duration>,
    ) -> Error {
        match self.quota_error(quota_type, per_second, limit) {
            Error::QuotaExceeded(mut e) => {
                e.retry_after = retry_after;
                Error::QuotaExceeded(e)
            }
            other => other,
        }
    }

    #[inline]
    pub(crate) fn release(&self, held: Held) {
        self.counts[held as usize].release(1);
    }

    /// Takes one connection if `max_connections` allows.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `connections` (with the number held);
    /// [`Error::TenantNotActive`].
    pub fn add_connection(&self) -> Result<(), Error> {
        self.acquire(Held::Connections)
    }
    /// Gives one connection back (never below 0).
    pub fn remove_connection(&self) {
        self.release(Held::Connections)
    }
    /// Takes one producer if `max_producers` allows.
    ///
    /// # Errors
    ///
    /// As [`QuotaTracker::add_connection`], for `producers`.
    pub fn add_producer(&self) -> Result<(), Error> {
        self.acquire(Held::Producers)
    }
    /// Gives one producer back (never below 0).
    pub fn remove_producer(&self) {
        self.release(Held::Producers)
    }
    /// Takes one consumer if `max_consumers` allows.
    ///
    /// # Errors
    ///
    /// As [`QuotaTracker::add_connection`], for `consumers`.
    pub fn add_consumer(&self) -> Result<(), Error> {
        self.acquire(Held::Consumers)
    }
    /// Gives one consumer back (never below 0).
    pub fn remove_consumer(&self) {
        self.release(Held::Consumers)
    }
    /// Takes one consumer group if `max_consumer_groups` allows.
    ///
    /// # Errors
    ///
    /// As [`QuotaTracker::add_connection`], for `consumer_groups`.
    pub fn add_consumer_group(&self) -> Result<(), Error> {
        self.acquire(Held::ConsumerGroups)
    }
    /// Gives one consumer group back (never below 0).
    pub fn remove_consumer_group(&self) {
        self.release(Held::ConsumerGroups)
    }

    /// Takes one topic and `partitions` partitions, both or neither.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `topics` or `partitions`;
    /// [`Error::TenantNotActive`].
    pub fn add_topic(&self, partitions: u32) -> Result<(), Error> {
        self.add_topic_within(partitions, None)
    }

    /// [`QuotaTracker::add_topic`] within a cluster sync's leases of topics
    /// and partitions, if given. A refusal names the quota either way.
    pub(crate) fn add_topic_within(
        &self,
        partitions: u32,
        leases: Option<(u64, u64)>,
    ) -> Result<(), Error> {
        self.check_active()?;
        let q = self.quotas.load();
        let (topics, parts) = match leases {
            Some((t, p)) => (
                within(q.max_topics, Some(t)),
                within(q.max_partitions, Some(p)),
            ),
            None => (q.max_topics, q.max_partitions),
        };
        let added = self.counts[Held::Topics as usize]
            .try_acquire(1, topics)
            .map_err(|c| self.quota_error(QuotaType::Topics, c, q.max_topics))?;
        if let Err(c) =
            self.counts[Held::Partitions as usize].try_acquire(u64::from(partitions), parts)
        {
            // Give back what was added: nothing if the count was saturated
            // (a restored `u64::MAX`), so a refusal leaves it as it was.
            self.counts[Held::Topics as usize].release(added);
            return Err(self.quota_error(QuotaType::Partitions, c, q.max_partitions));
        }
        Ok(())
    }

    /// Gives back one topic and `partitions` partitions (never below 0).
    pub fn remove_topic(&self, partitions: u32) {
        self.counts[Held::Topics as usize].release(1);
        self.counts[Held::Partitions as usize].release(u64::from(partitions));
    }

    /// Would `additional_bytes` more fit in `max_storage_bytes`, given the
    /// usage last reported with [`QuotaTracker::update_storage`]? Records
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `storage`; [`Error::TenantNotActive`].
    pub fn check_storage(&self, additional_bytes: u64) -> Result<(), Error> {
        self.check_active()?;
        let limit = self.quotas.load().max_storage_bytes;
        let used = self.storage.get();
        if limit >= 0 && used.saturating_add(additional_bytes) > limit as u64 {
            return Err(self.quota_error(QuotaType::Storage, used, limit));
        }
        Ok(())
    }

    /// Sets the storage the tenant occupies (the broker measures it; this
    /// works in every status so a suspended tenant can drain).
    pub fn update_storage(&self, bytes: u64) {
        self.storage.set(bytes);
        // A cluster sync reports storage for the tenants it follows: a
        // watched tenant's storage change feeds it, as a call does.
        if self.state.load(Ordering::Acquire) & WATCHED != 0 {
            self.feed_if_watched();
        }
    }

    /// Clears the `WATCHED` bit, and the caller that cleared it tells the
    /// cluster sync (see `cluster_hooks.rs`).
    #[cold]
    #[inline(never)]
    fn feed_if_watched(&self) {
        // AcqRel: one caller clears the bit and tells the sync; the sync's
        // `rewatch` (which sets it again) is ordered before this.
        let before = self.state.fetch_and(!WATCHED, Ordering::AcqRel);
        if before & WATCHED != 0 {
            if let Some(hooks) = self.clock.cluster() {
                hooks.push(StdArc::clone(&self.id));
            }
        }
    }

    /// The storage last reported on this broker.
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn storage(&self) -> u64 {
        self.storage.get()
    }

    /// Sets the counts held and the storage occupied to `held`, every field
    /// (zeros included), without the limit check: how a broker re-reports
    /// after a restart what it already holds. Works in every status.
    ///
    /// A count restored above its limit stays there: acquires of that kind
    /// are refused until releases bring it below the limit; releases stop at
    /// 0 as always.
    ///
    /// Each count is set with one atomic store, so a restore racing an
    /// acquire or release on the same count takes effect either before it
    /// (the acquire or release applies to the restored value) or after it
    /// (overwriting it); the counts are set one after the other, not all at
    /// once. Restore before the tenant's traffic starts (at start-up, before
    /// the broker accepts), or give the values held at that moment; a unit
    /// acquired before the restore and released after it is taken off the
    /// restored value.
    ///
    /// # Examples
    ///
    /// ```
    /// use streambus_tenancy::{HeldUsage, Manager, Quotas};
    ///
    /// let manager = Manager::new();
    /// manager.create_tenant("t", "T", Quotas { max_connections: 1, ..Quotas::default() })?;
    /// let tracker = manager.get_tracker("t")?;
    /// tracker.restore_usage(&HeldUsage { connections: 3, ..HeldUsage::default() });
    /// assert!(tracker.add_connection().is_err());
    /// # Ok::<(), streambus_tenancy::Error>(())
    /// ```
    pub fn restore_usage(&self, held: &HeldUsage) {
        for h in Held::ALL {
            self.counts[h as usize].set(h.of(held));
        }
        self.storage.set(held.storage_bytes);
    }

    /// Is a retention of `hours` within `max_retention_hours`?
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `retention_hours` with `current` = `hours`;
    /// [`Error::TenantNotActive`].
    pub fn check_retention(&self, hours: u64) -> Result<(), Error> {
        self.check_active()?;
        let limit = self.quotas.load().max_retention_hours;
        if limit >= 0 && hours > limit as u64 {
            return Err(self.quota_error(QuotaType::RetentionHours, hours, limit));
        }
        Ok(())
    }

    // ----- usage -----------------------------------------------------------

    /// Lifetime counters: what was admitted and what was refused, by quota.
    ///
    /// Read from state the engine keeps anyway (window totals sealed at each
    /// bucket rotation, refusal counts bumped on the refusal path), so keeping
    /// them costs an admission nothing. Admitted totals may trail by the one
    /// bucket being rotated at the moment of reading.
    pub fn counters(&self) -> TenantCounters {
        let mut refused = [0u64; QuotaType::COUNT];
        for (r, a) in refused.iter_mut().zip(&self.refusals) {
            *r = u64::from(a.load(Ordering::Relaxed));
        }
        TenantCounters {
            admitted_bytes: self.window(BYTES).total(),
            admitted_messages: self.window(MESSAGES).total(),
            admitted_requests: self.window(REQUESTS).total(),
            refused,
            refused_not_active: u64::from(self.refusals[NOT_ACTIVE].load(Ordering::Relaxed)),
        }
    }

    /// Usage now: counts held, storage reported, rates over the window.
    pub fn get_usage(&self) -> Usage {
        Usage {
            tenant_id: self.id.to_string(),
            ..self.usage_unlabelled()
        }
    }

    /// [`QuotaTracker::get_usage`] with an empty `tenant_id`, for readers
    /// that have the id already: allocates nothing.
    pub(crate) fn usage_unlabelled(&self) -> Usage {
        let now = self.clock.now();
        let g = *self.clock.geometry();
        let rate = |r: usize| g.per_second(self.window(r).used(now));
        Usage {
            tenant_id: String::new(),
            connections: self.counts[Held::Connections as usize].get(),
            producers: self.counts[Held::Producers as usize].get(),
            consumers: self.counts[Held::Consumers as usize].get(),
            consumer_groups: self.counts[Held::ConsumerGroups as usize].get(),
            topics: self.counts[Held::Topics as usize].get(),
            partitions: self.counts[Held::Partitions as usize].get(),
            storage_bytes: self.storage.get(),
            bytes_per_second: rate(BYTES),
            messages_per_second: rate(MESSAGES),
            requests_per_second: rate(REQUESTS),
            connection_creation_rate: rate(OPENED),
        }
    }

    /// Percent of one quota in use, by [`QuotaType::as_str`] name.
    ///
    /// `0.0` for an unlimited quota, an unknown name, and `retention_hours`
    /// (which has no usage); `100.0` for a zero quota with anything in use.
    pub fn utilization_percent(&self, quota_type: &str) -> f64 {
        match QuotaType::parse(quota_type) {
            Some(q) => utilization(&self.get_usage(), &self.quotas(), q),
            None => 0.0,
        }
    }
}

/// Slots held inline for windows of up to this many buckets (the default
/// window has 10); longer windows keep theirs in a boxed slice.
const INLINE_BUCKETS: usize = 10;

/// The four windows' slots: bytes, messages and requests interleaved (tick
/// index 0 of the three, then index 1, ...), then connections opened.
#[derive(Debug)]
struct Slots {
    inline: [AtomicU64; WINDOWS * INLINE_BUCKETS],
    /// `Some` when the window has more than [`INLINE_BUCKETS`] buckets
    /// (boxed twice so that the inline case pays one word for it).
    #[allow(clippy::box_collection)]
    heap: Option<Box<Box<[AtomicU64]>>>,
}

impl Slots {
    fn new(len: usize) -> Slots {
        Slots {
            inline: std::array::from_fn(|_| AtomicU64::new(0)),
            heap: (len > WINDOWS * INLINE_BUCKETS)
                .then(|| Box::new((0..len).map(|_| AtomicU64::new(0)).collect())),
        }
    }

    /// The first `len` slots (`WINDOWS * buckets`, as at [`Slots::new`]).
    ///
    /// Whether they are inline is decided from `len`, which the caller has
    /// from the clock's geometry (a line every tracker shares), not from
    /// `heap`: that word sits after the inline slots, a cache line of its
    /// own that a rotation would otherwise load for this one test.
    #[inline]
    fn get(&self, len: usize) -> &[AtomicU64] {
        if len <= self.inline.len() {
            &self.inline[..len]
        } else {
            match &self.heap {
                Some(heap) => heap,
                None => unreachable!("a tracker for {len} slots has them on the heap"),
            }
        }
    }
}

/// Lifetime totals of one tenant, for monitoring (Prometheus counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantCounters {
    /// Bytes admitted by produce and consume (and recorded by
    /// `record_throughput`).
    pub admitted_bytes: u64,
    /// Messages admitted.
    pub admitted_messages: u64,
    /// Requests admitted (every produce, consume and other request).
    pub admitted_requests: u64,
    /// Refusals by quota type, indexed like [`QuotaType::ALL`].
    pub refused: [u64; QuotaType::COUNT],
    /// Calls refused because the tenant was suspended or deleted.
    pub refused_not_active: u64,
}

impl TenantCounters {
    /// Refusals by one quota type.
    pub fn refused(&self, quota_type: QuotaType) -> u64 {
        self.refused[quota_type.index()]
    }
}

/// Percent of `q` in use (see [`QuotaTracker::utilization_percent`]).
pub(crate) fn utilization(usage: &Usage, quotas: &Quotas, q: QuotaType) -> f64 {
    let (Some(used), limit) = (usage.get(q), quotas.get(q)) else {
        return 0.0;
    };
    match limit {
        l if l < 0 => 0.0,
        0 if used == 0 => 0.0,
        0 => 100.0,
        l => used as f64 * 100.0 / l as f64,
    }
}
