//! The manager: tenant lifecycle over the registry, and enforcement by id.

use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, SystemTime};

use smol_str::SmolStr;

use crate::clock::{validate_max_throttle, Geometry, TickClock, DEFAULT_MAX_THROTTLE};
use crate::registry::Registry;
use crate::sync::{Arc, StdArc};
use crate::tenant::{from_nanos, to_nanos, validate_name, validate_tenant_id, TenantInfo};
use crate::tracker::{utilization, Held, QuotaTracker};
use crate::{
    Error, HeldUsage, Permit, QuotaType, Quotas, Tenant, TenantPage, TenantStats, TenantStatus,
    Usage,
};

/// Coordinates tenants and enforces their quotas by id.
///
/// `Manager` is `Send + Sync`; a broker builds one and shares it as
/// `Arc<Manager>`. Enforcement (`enforce_*`, `acquire_*`, `release_*`) takes no
/// lock and allocates nothing on admission or quota refusal; the admin calls
/// (`create_tenant`, `update_tenant`, ...) touch only the tenant they name.
///
/// # Examples
///
/// ```
/// use streambus_tenancy::{Manager, Quotas, QuotaType, Error};
///
/// let manager = Manager::new();
/// manager.create_tenant("acme-corp", "ACME Corporation", Quotas::default())?;
///
/// // On every produce request:
/// manager.enforce_produce_quota("acme-corp", 1024, 1)?;
///
/// // A refusal says which quota, how much is in use, the limit, and when to retry.
/// match manager.enforce_produce_quota("acme-corp", 64 << 20, 1) {
///     Err(Error::QuotaExceeded(e)) => {
///         assert_eq!(e.quota_type, QuotaType::BytesPerSecond);
///         assert_eq!(e.retry_after, None); // 64 MiB alone exceeds 10 MiB/s
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct Manager {
    registry: Registry,
    clock: StdArc<TickClock>,
}

/// Configures a [`Manager`]: clock, window length, bucket count, capacity.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use streambus_tenancy::Manager;
///
/// let (clock, mock) = quanta::Clock::mock();
/// let manager = Manager::builder()
///     .clock(clock)
///     .window(Duration::from_secs(1))
///     .buckets(10)
///     .build();
/// mock.increment(Duration::from_millis(100)); // tests move time by hand
/// # drop(manager);
/// ```
#[derive(Debug)]
pub struct ManagerBuilder {
    clock: Option<quanta::Clock>,
    window: Duration,
    buckets: usize,
    capacity: usize,
    max_throttle: Duration,
    cached_clock: Option<Duration>,
}

impl ManagerBuilder {
    /// The clock windows read time from (default: `quanta::Clock::new()`).
    /// Tests pass `quanta::Clock::mock()` and advance it by hand.
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Length of the sliding window rates are measured over (default 1 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Buckets per window (default 10, i.e. 100 ms buckets).
    pub fn buckets(mut self, buckets: usize) -> Self {
        self.buckets = buckets;
        self
    }

    /// Tenants to make room for up front (default 0: grow as needed).
    pub fn capacity(mut self, tenants: usize) -> Self {
        self.capacity = tenants;
        self
    }

    /// The longest delay [`Manager::throttle_produce_quota`] and the other
    /// throttle calls answer (default 30 s; more than 0, at most 1 hour).
    ///
    /// 30 s is a Kafka client's default `request.timeout.ms`: a broker that
    /// mutes a connection for longer makes the client time out and retry,
    /// which adds load instead of shedding it. A capped delay does not
    /// forgive the debt: the next call is delayed again until the backlog
    /// has drained.
    pub fn max_throttle(mut self, max: Duration) -> Self {
        self.max_throttle = max;
        self
    }

    /// Reads time from a reading a background thread refreshes every
    /// `refresh`, instead of from the clock on every call (default: the
    /// clock on every call).
    ///
    /// Reading the CPU's time-stamp counter and scaling it costs about
    /// 9.5 ns, about half of an admission through a cached
    /// [`QuotaTracker`]; a cached reading is one load (about 1.7 ns on the
    /// machine in BENCHMARKS.md; the admission was about 5 ns faster). The
    /// price: every call reads a time up to `refresh` (plus the thread's
    /// scheduling delay) old. The windows are exact in that time, so a call
    /// is counted, and later leaves the window, as if it had come that much
    /// earlier, and a refusal's `retry_after` and a throttle delay may be
    /// that much longer. In real time the lag moves: a window filled while
    /// the thread was late by `D` empties `D` early, so a span of real time
    /// one window long can hold a window's quota plus what was admitted in
    /// the last `D` of the span before. With the default 100 ms buckets and
    /// a 1 ms refresh, at most about 1% of a bucket's calls (half that on
    /// average) land in the bucket before. Kafka's quota manager reads a
    /// millisecond clock the same way.
    ///
    /// The thread (named `streambus-clock`) wakes every `refresh` and stops
    /// within one `refresh` of the last handle on the manager's clock going
    /// away: the manager and every [`QuotaTracker`] taken from it. A mock
    /// clock is read by the thread too, so a test that moves it by hand
    /// must wait for the next refresh to see the move.
    ///
    /// `refresh` must be at least 100 µs (shorter would keep the thread
    /// busy waking for nothing) and at most one bucket
    /// ([`ManagerBuilder::try_build`] refuses anything else).
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambus_tenancy::Manager;
    ///
    /// let manager = Manager::builder()
    ///     .cached_clock(Duration::from_millis(1))
    ///     .build();
    /// # drop(manager);
    /// ```
    pub fn cached_clock(mut self, refresh: Duration) -> Self {
        self.cached_clock = Some(refresh);
        self
    }

    /// Builds the manager.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the bucket count is 0 or above 1024, the
    /// window is longer than an hour, a bucket would be shorter than 1 µs,
    /// the window does not split into equal whole-nanosecond buckets,
    /// `max_throttle` is 0 or longer than an hour, or a
    /// [`cached_clock`](ManagerBuilder::cached_clock) refresh is under
    /// 100 µs or longer than a bucket; also if the cached clock's thread cannot be started
    /// (the process is out of threads), with the operating system's reason.
    pub fn try_build(self) -> Result<Manager, Error> {
        let geometry = Geometry::new(self.window, self.buckets).map_err(Error::InvalidConfig)?;
        let max_throttle =
            validate_max_throttle(self.max_throttle).map_err(Error::InvalidConfig)?;
        if let Some(refresh) = self.cached_clock {
            let bucket = Duration::from_nanos(geometry.bucket_nanos);
            if refresh < MIN_CLOCK_REFRESH || refresh > bucket {
                return Err(Error::InvalidConfig(format!(
                    "cached_clock refresh must be at least {MIN_CLOCK_REFRESH:?} and at most one bucket ({bucket:?}), got {refresh:?}"
                )));
            }
        }
        let clock = StdArc::new(TickClock::new(
            self.clock,
            geometry,
            max_throttle,
            self.cached_clock.is_some(),
        ));
        if let Some(refresh) = self.cached_clock {
            clock.refresh();
            spawn_refresher(StdArc::downgrade(&clock), refresh)?;
        }
        Ok(Manager {
            registry: Registry::new(self.capacity),
            clock,
        })
    }

    /// Builds the manager.
    ///
    /// # Panics
    ///
    /// If the configuration is invalid; see [`ManagerBuilder::try_build`].
    pub fn build(self) -> Manager {
        match self.try_build() {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The shortest refresh a cached clock may have.
const MIN_CLOCK_REFRESH: Duration = Duration::from_micros(100);

/// Starts the thread that refreshes a cached clock every `refresh` until
/// the clock is dropped.
fn spawn_refresher(clock: std::sync::Weak<TickClock>, refresh: Duration) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("streambus-clock".into())
        .spawn(move || loop {
            std::thread::sleep(refresh);
            match clock.upgrade() {
                Some(clock) => clock.refresh(),
                None => return,
            }
        })
        .map(drop)
        .map_err(|e| Error::InvalidConfig(format!("cannot start the clock thread: {e}")))
}

impl Default for Manager {
    fn default() -> Self {
        Manager::new()
    }
}

/// Fields of a tenant to create beyond id, name and quotas.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewTenant {
    /// Unique id (see [`validate_tenant_id`](crate::validate_tenant_id)).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Operator labels.
    pub metadata: BTreeMap<String, String>,
    /// Quotas.
    pub quotas: Quotas,
}

impl NewTenant {
    /// The active tenant this describes, created and updated at `now`.
    pub fn into_tenant(self, now: SystemTime) -> Tenant {
        Tenant {
            id: self.id,
            name: self.name,
            description: self.description,
            created_at: now,
            updated_at: now,
            quotas: self.quotas,
            metadata: self.metadata,
            status: TenantStatus::Active,
        }
    }
}

/// A partial update of a tenant: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New metadata (replaces the old map whole).
    pub metadata: Option<BTreeMap<String, String>>,
    /// New quotas; the next enforcement sees them.
    pub quotas: Option<Quotas>,
}

impl Manager {
    /// A manager on the real clock with a 1 s window of 10 buckets.
    pub fn new() -> Manager {
        Manager::builder().build()
    }

    /// Configures a manager; see [`ManagerBuilder`].
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder {
            clock: None,
            window: Duration::from_secs(1),
            buckets: 10,
            capacity: 0,
            max_throttle: DEFAULT_MAX_THROTTLE,
            cached_clock: None,
        }
    }

    /// The window rates are measured over.
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.clock.geometry().window_nanos())
    }

    /// Buckets per window.
    pub fn buckets(&self) -> usize {
        self.clock.geometry().buckets as usize
    }

    /// The cap on throttle delays (see [`ManagerBuilder::max_throttle`]).
    pub fn max_throttle(&self) -> Duration {
        self.clock.throttle_shape().max_throttle
    }

    /// Number of tenants.
    pub fn len(&self) -> usize {
        self.registry.len()
    }

    /// True if there are no tenants.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the loom stand-in clock forward by whole buckets (models only).
    #[cfg(quota_loom)]
    pub fn advance_buckets(&self, buckets: u64) {
        self.clock.advance(buckets);
    }

    // ----- lifecycle -------------------------------------------------------

    /// Creates an active tenant.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTenantId`], [`Error::InvalidName`],
    /// [`Error::InvalidQuotas`] for bad input; [`Error::TenantExists`] if the
    /// id is taken (of concurrent creates of one id exactly one succeeds).
    pub fn create_tenant(&self, id: &str, name: &str, quotas: Quotas) -> Result<Tenant, Error> {
        self.create(NewTenant {
            id: id.to_owned(),
            name: name.to_owned(),
            quotas,
            ..NewTenant::default()
        })
    }

    /// Creates an active tenant with a description and metadata.
    ///
    /// # Errors
    ///
    /// As [`Manager::create_tenant`].
    pub fn create(&self, new: NewTenant) -> Result<Tenant, Error> {
        self.insert(new.into_tenant(SystemTime::now()))
    }

    /// Inserts a tenant as it is, keeping its timestamps and status: how a
    /// durable store rebuilds the engine at start.
    ///
    /// # Errors
    ///
    /// As [`Manager::create_tenant`]; a `Deleted` tenant is refused with
    /// [`Error::InvalidConfig`].
    pub fn restore(&self, tenant: Tenant) -> Result<Tenant, Error> {
        self.insert(tenant)
    }

    fn insert(&self, t: Tenant) -> Result<Tenant, Error> {
        validate_tenant_id(&t.id)?;
        validate_name(&t.name)?;
        t.quotas.validate()?;
        if t.status == TenantStatus::Deleted {
            return Err(Error::InvalidConfig(format!(
                "tenant {:?} is deleted and cannot be inserted",
                t.id
            )));
        }
        let info = TenantInfo {
            name: t.name.as_str().into(),
            description: t.description.as_str().into(),
            created_at_ns: to_nanos(t.created_at),
            updated_at_ns: to_nanos(t.updated_at),
            metadata: t.metadata.clone(),
        };
        let tracker = QuotaTracker::new(
            StdArc::from(t.id.as_str()),
            t.quotas,
            StdArc::clone(&self.clock),
            info,
        );
        if let Some(hooks) = self.clock.cluster() {
            tracker.cap_rates(hooks.unfollowed_caps(&t.quotas, self.clock.geometry()));
            tracker.rewatch();
        }
        if t.status == TenantStatus::Suspended {
            let _ = tracker.transition(&[TenantStatus::Active], TenantStatus::Suspended);
        }
        match self.registry.try_insert(Arc::new(tracker)) {
            Ok(()) => {
                tracing::debug!(tenant = %t.id, "tenant created");
                Ok(t)
            }
            Err(()) => Err(Error::TenantExists(t.id)),
        }
    }

    /// The tenant with this id.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn get_tenant(&self, id: &str) -> Result<Tenant, Error> {
        self.lookup(id, |t| tenant_of(t))
    }

    /// Changes a tenant's name and/or quotas; the next enforcement sees the
    /// new quotas. Lowering a quota below current usage keeps what is held
    /// and refuses new admissions until usage falls below the new limit.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidQuotas`],
    /// [`Error::TenantNotFound`].
    pub fn update_tenant(
        &self,
        id: &str,
        name: Option<&str>,
        quotas: Option<Quotas>,
    ) -> Result<Tenant, Error> {
        self.update(
            id,
            TenantUpdate {
                name: name.map(str::to_owned),
                quotas,
                ..TenantUpdate::default()
            },
        )
    }

    /// Applies a partial update (name, description, metadata, quotas).
    ///
    /// # Errors
    ///
    /// As [`Manager::update_tenant`].
    pub fn update(&self, id: &str, update: TenantUpdate) -> Result<Tenant, Error> {
        if let Some(name) = &update.name {
            validate_name(name)?;
        }
        if let Some(q) = &update.quotas {
            q.validate()?;
        }
        let tracker = self.get_tracker(id)?;
        if let Some(q) = update.quotas {
            tracker.set_quotas(q);
        }
        tracker.info.rcu(|old| {
            let mut info = (**old).clone();
            if let Some(n) = &update.name {
                info.name = n.as_str().into();
            }
            if let Some(d) = &update.description {
                info.description = d.as_str().into();
            }
            if let Some(m) = &update.metadata {
                info.metadata = m.clone();
            }
            info.updated_at_ns = to_nanos(SystemTime::now());
            info
        });
        Ok(tenant_of(&tracker))
    }

    /// Sets an existing tenant's name, description, metadata, quotas, status
    /// and `updated_at` to those of `tenant`, keeping its `created_at`.
    ///
    /// This is how a durable store applies a change it has just written, so
    /// that the engine and the store agree on every field, timestamps
    /// included. Quotas take effect on the next enforcement; a status of
    /// `Suspended` or `Active` is applied as by [`Manager::suspend_tenant`]
    /// and [`Manager::activate_tenant`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidQuotas`],
    /// [`Error::TenantNotFound`]; [`Error::InvalidConfig`] if `tenant.status`
    /// is `Deleted` (use [`Manager::delete_tenant`]).
    pub fn replace(&self, tenant: &Tenant) -> Result<Tenant, Error> {
        validate_name(&tenant.name)?;
        tenant.quotas.validate()?;
        if tenant.status == TenantStatus::Deleted {
            return Err(Error::InvalidConfig(format!(
                "tenant {:?}: replace cannot delete; use delete_tenant",
                tenant.id
            )));
        }
        let tracker = self.get_tracker(&tenant.id)?;
        tracker.set_quotas(tenant.quotas);
        tracker.info.rcu(|old| TenantInfo {
            name: tenant.name.as_str().into(),
            description: tenant.description.as_str().into(),
            created_at_ns: old.created_at_ns,
            updated_at_ns: to_nanos(tenant.updated_at),
            metadata: tenant.metadata.clone(),
        });
        let from = [TenantStatus::Active, TenantStatus::Suspended];
        if tracker.transition(&from, tenant.status).is_err() {
            // Deleted between the lookup and the transition.
            return Err(Error::TenantNotFound(tenant.id.clone()));
        }
        Ok(tenant_of(&tracker))
    }

    /// Removes a tenant. Handles still held ([`QuotaTracker`], [`Permit`])
    /// refuse every admission from now on, and their releases never touch a
    /// tenant later created with the same id.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn delete_tenant(&self, id: &str) -> Result<(), Error> {
        let tracker = self
            .registry
            .remove(id)
            .ok_or_else(|| Error::TenantNotFound(id.to_owned()))?;
        let _ = tracker.transition(
            &[TenantStatus::Active, TenantStatus::Suspended],
            TenantStatus::Deleted,
        );
        tracing::debug!(tenant = %id, "tenant deleted");
        Ok(())
    }

    /// Every tenant, sorted by id.
    pub fn list_tenants(&self) -> Vec<Tenant> {
        let mut all = Vec::with_capacity(self.registry.len());
        self.registry.for_each(|t| all.push(tenant_of(t)));
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// One page of tenants in id order: the first `limit` tenants whose ids
    /// sort after `after` (from the first tenant for `None`), how many
    /// tenants there are in all, and the cursor of the next page.
    ///
    /// `after` is an exclusive cursor and need not name an existing tenant:
    /// a page ends with the tenants created after it and skips those
    /// deleted. The walk over the tenants compares ids and copies one only
    /// while it is among the `limit` smallest seen so far (inline, without
    /// allocating, up to 23 bytes); a [`Tenant`] is built for the page's
    /// tenants alone. Like [`Manager::list_tenants`] the
    /// view is weakly consistent: a tenant created or deleted meanwhile may
    /// or may not be in it. A `limit` of 0 answers only `total`.
    ///
    /// # Examples
    ///
    /// ```
    /// use streambus_tenancy::{Manager, Quotas};
    ///
    /// let m = Manager::new();
    /// for id in ["c", "a", "d", "b"] {
    ///     m.create_tenant(id, id, Quotas::default())?;
    /// }
    /// let first = m.list_tenants_page(None, 3);
    /// let ids: Vec<_> = first.tenants.iter().map(|t| t.id.as_str()).collect();
    /// assert_eq!((ids, first.total, first.next.as_deref()), (vec!["a", "b", "c"], 4, Some("c")));
    /// let last = m.list_tenants_page(first.next.as_deref(), 3);
    /// assert_eq!((last.tenants.len(), last.next), (1, None));
    /// # Ok::<(), streambus_tenancy::Error>(())
    /// ```
    pub fn list_tenants_page(&self, after: Option<&str>, limit: usize) -> TenantPage {
        // A max-heap of the `limit` smallest ids seen so far: an id that
        // sorts after its top is passed over without being copied.
        let mut smallest: BinaryHeap<SmolStr> =
            BinaryHeap::with_capacity(limit.min(self.registry.len()));
        let (mut total, mut candidates) = (0usize, 0usize);
        self.registry.for_each(|t| {
            total += 1;
            let id = t.id();
            if after.is_some_and(|a| id <= a) {
                return;
            }
            candidates += 1;
            if smallest.len() < limit {
                smallest.push(SmolStr::new(id));
            } else if smallest.peek().is_some_and(|top| id < top.as_str()) {
                smallest.pop();
                smallest.push(SmolStr::new(id));
            }
        });
        let ids = smallest.into_sorted_vec();
        let next = match ids.last() {
            Some(last) if candidates > ids.len() => Some(last.to_string()),
            _ => None,
        };
        let tenants = ids
            .iter()
            .filter_map(|id| self.registry.with(id, |t| tenant_of(t)))
            .collect();
        TenantPage {
            tenants,
            total,
            next,
        }
    }

    /// Suspends a tenant: every enforce and acquire call is refused with
    /// [`Error::TenantNotActive`] from the moment this returns; releases,
    /// permit drops and storage updates still work so it can drain.
    /// Suspending a suspended tenant is a no-op.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn suspend_tenant(&self, id: &str) -> Result<(), Error> {
        self.set_status(id, TenantStatus::Active, TenantStatus::Suspended)
    }

    /// Re-activates a suspended tenant. Activating an active tenant is a no-op.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn activate_tenant(&self, id: &str) -> Result<(), Error> {
        self.set_status(id, TenantStatus::Suspended, TenantStatus::Active)
    }

    fn set_status(&self, id: &str, from: TenantStatus, to: TenantStatus) -> Result<(), Error> {
        let tracker = self.get_tracker(id)?;
        match tracker.transition(&[from, to], to) {
            Ok(()) => {
                tracker.info.rcu(|old| {
                    let mut info = (**old).clone();
                    info.updated_at_ns = to_nanos(SystemTime::now());
                    info
                });
                tracing::info!(tenant = %id, status = %to, "tenant status changed");
                Ok(())
            }
            // Deleted between the lookup and the transition.
            Err(_) => Err(Error::TenantNotFound(id.to_owned())),
        }
    }

    // ----- enforcement by id -------------------------------------------------

    #[inline]
    fn lookup<R>(&self, id: &str, f: impl FnOnce(&Arc<QuotaTracker>) -> R) -> Result<R, Error> {
        match self.registry.with(id, f) {
            Some(r) => Ok(r),
            None => Err(not_found(id)),
        }
    }

    /// Admits a produce of `bytes` in `messages` messages (plus one request),
    /// all or nothing. Produce and consume share the rate windows.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] (nothing recorded), [`Error::TenantNotActive`],
    /// [`Error::TenantNotFound`].
    #[inline]
    pub fn enforce_produce_quota(&self, id: &str, bytes: u64, messages: u64) -> Result<(), Error> {
        self.lookup(id, |t| t.enforce_produce(bytes, messages))?
    }

    /// Admits a consume (fetch) of `bytes` in `messages` messages (plus one
    /// request), all or nothing.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_produce_quota`].
    #[inline]
    pub fn enforce_consume_quota(&self, id: &str, bytes: u64, messages: u64) -> Result<(), Error> {
        self.lookup(id, |t| t.enforce_consume(bytes, messages))?
    }

    /// Admits one request of another kind.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_produce_quota`], for `requests_per_second`.
    #[inline]
    pub fn enforce_request_quota(&self, id: &str) -> Result<(), Error> {
        self.lookup(id, |t| t.enforce_request())?
    }

    /// Records a produce of `bytes` in `messages` messages (plus one
    /// request) and answers how long to hold the client off, Kafka-style
    /// (`throttle_time_ms`), instead of refusing it.
    ///
    /// The call is always recorded, in the same windows as
    /// [`Manager::enforce_produce_quota`] (usage, utilization, counters and
    /// the refusing calls see it). The answer is `Duration::ZERO` while the
    /// tenant stays within its rate quotas (every call the refusing call
    /// would have admitted gets zero); otherwise the time until its backlog
    /// is back within one window's worth, the largest over the rate quotas
    /// it is over, at most [`ManagerBuilder::max_throttle`]. A capped delay
    /// does not forgive the debt: a client that sends again after the cap
    /// is delayed again. Debt is carried past the window, so a client that
    /// waits each delay is admitted at most one window plus quota × time
    /// over any span. See `QuotaTracker::throttle_produce` for the rules.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use streambus_tenancy::{Manager, Quotas};
    ///
    /// let (clock, mock) = quanta::Clock::mock();
    /// let manager = Manager::builder().clock(clock).build(); // 1 s window, 10 buckets
    /// manager.create_tenant("t", "T", Quotas { max_bytes_per_second: 100, ..Quotas::unlimited() })?;
    ///
    /// // Within the quota: no delay.
    /// assert_eq!(manager.throttle_produce_quota("t", 100, 1)?, Duration::ZERO);
    /// // 400 more: recorded, and the client is muted until the debt drains.
    /// let delay = manager.throttle_produce_quota("t", 400, 1)?;
    /// assert_eq!(delay, Duration::from_secs(4));
    /// mock.increment(delay);
    /// assert_eq!(manager.throttle_produce_quota("t", 0, 0)?, Duration::ZERO);
    /// # Ok::<(), streambus_tenancy::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotActive`] (nothing recorded),
    /// [`Error::TenantNotFound`]. Never [`Error::QuotaExceeded`].
    #[inline]
    pub fn throttle_produce_quota(
        &self,
        id: &str,
        bytes: u64,
        messages: u64,
    ) -> Result<Duration, Error> {
        self.lookup(id, |t| t.throttle_produce(bytes, messages))?
    }

    /// Records a consume (fetch) of `bytes` in `messages` messages (plus one
    /// request) and answers how long to hold the client off; as
    /// [`Manager::throttle_produce_quota`], in the same windows and backlog.
    ///
    /// # Errors
    ///
    /// As [`Manager::throttle_produce_quota`].
    #[inline]
    pub fn throttle_consume_quota(
        &self,
        id: &str,
        bytes: u64,
        messages: u64,
    ) -> Result<Duration, Error> {
        self.lookup(id, |t| t.throttle_consume(bytes, messages))?
    }

    #[inline]
    fn acquire_held(&self, id: &str, held: Held) -> Result<(), Error> {
        self.lookup(id, |t| t.acquire(held))?
    }

    #[inline]
    fn release_held(&self, id: &str, held: Held) {
        let _ = self.registry.with(id, |t| t.release(held));
    }

    fn permit(&self, id: &str, held: Held) -> Result<Permit, Error> {
        self.lookup(id, |t| {
            t.acquire(held)?;
            Ok(Permit::new(Arc::clone(t), held))
        })?
    }

    /// Takes one connection. Pair with [`Manager::release_connection`], or use
    /// [`Manager::acquire_connection`] and let the permit release it.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `connections`, [`Error::TenantNotActive`],
    /// [`Error::TenantNotFound`].
    #[inline]
    pub fn enforce_connection_quota(&self, id: &str) -> Result<(), Error> {
        self.acquire_held(id, Held::Connections)
    }
    /// Gives one connection back (never below 0; unknown ids are ignored).
    #[inline]
    pub fn release_connection(&self, id: &str) {
        self.release_held(id, Held::Connections)
    }
    /// Takes one producer.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_connection_quota`], for `producers`.
    pub fn enforce_producer_quota(&self, id: &str) -> Result<(), Error> {
        self.acquire_held(id, Held::Producers)
    }
    /// Gives one producer back.
    pub fn release_producer(&self, id: &str) {
        self.release_held(id, Held::Producers)
    }
    /// Takes one consumer.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_connection_quota`], for `consumers`.
    pub fn enforce_consumer_quota(&self, id: &str) -> Result<(), Error> {
        self.acquire_held(id, Held::Consumers)
    }
    /// Gives one consumer back.
    pub fn release_consumer(&self, id: &str) {
        self.release_held(id, Held::Consumers)
    }
    /// Takes one consumer group.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_connection_quota`], for `consumer_groups`.
    pub fn enforce_consumer_group_quota(&self, id: &str) -> Result<(), Error> {
        self.acquire_held(id, Held::ConsumerGroups)
    }
    /// Gives one consumer group back.
    pub fn release_consumer_group(&self, id: &str) {
        self.release_held(id, Held::ConsumerGroups)
    }

    /// Takes one topic with `partitions` partitions, both or neither.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `topics` or `partitions`,
    /// [`Error::TenantNotActive`], [`Error::TenantNotFound`].
    pub fn enforce_topic_quota(&self, id: &str, partitions: u32) -> Result<(), Error> {
        self.lookup(id, |t| t.add_topic(partitions))?
    }
    /// Gives back one topic with `partitions` partitions.
    pub fn release_topic(&self, id: &str, partitions: u32) {
        let _ = self.registry.with(id, |t| t.remove_topic(partitions));
    }

    /// Would `bytes` more fit in the storage quota, given the usage last
    /// reported with [`Manager::update_storage_usage`]? Records nothing.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `storage`, [`Error::TenantNotActive`],
    /// [`Error::TenantNotFound`].
    pub fn enforce_storage_quota(&self, id: &str, bytes: u64) -> Result<(), Error> {
        self.lookup(id, |t| t.check_storage(bytes))?
    }

    /// Sets the storage a tenant occupies (works while suspended).
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn update_storage_usage(&self, id: &str, bytes: u64) -> Result<(), Error> {
        self.lookup(id, |t| t.update_storage(bytes))
    }

    /// Sets the counts a tenant holds (connections, producers, consumers,
    /// consumer groups, topics, partitions) and its storage to `held`, without
    /// the limit check: after a restart the engine's counts are 0, and the
    /// broker re-reports what it already holds before it accepts traffic.
    /// Works in every status; see [`QuotaTracker::restore_usage`] for a
    /// restore over the limit and one racing acquires.
    ///
    /// # Examples
    ///
    /// ```
    /// use streambus_tenancy::{HeldUsage, Manager, Quotas};
    ///
    /// let manager = Manager::new();
    /// manager.create_tenant("acme", "ACME", Quotas::default())?;
    /// manager.restore_usage("acme", &HeldUsage { topics: 2, partitions: 8, ..HeldUsage::default() })?;
    /// assert_eq!(manager.get_usage("acme")?.partitions, 8);
    /// # Ok::<(), streambus_tenancy::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn restore_usage(&self, id: &str, held: &HeldUsage) -> Result<(), Error> {
        self.lookup(id, |t| t.restore_usage(held))
    }

    /// Is a retention of `hours` within the tenant's `max_retention_hours`?
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `retention_hours`,
    /// [`Error::TenantNotActive`], [`Error::TenantNotFound`].
    pub fn enforce_retention_quota(&self, id: &str, hours: u64) -> Result<(), Error> {
        self.lookup(id, |t| t.check_retention(hours))?
    }

    /// Takes one connection, released when the permit drops.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_connection_quota`].
    pub fn acquire_connection(&self, id: &str) -> Result<Permit, Error> {
        self.permit(id, Held::Connections)
    }
    /// Takes one producer, released when the permit drops.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_producer_quota`].
    pub fn acquire_producer(&self, id: &str) -> Result<Permit, Error> {
        self.permit(id, Held::Producers)
    }
    /// Takes one consumer, released when the permit drops.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_consumer_quota`].
    pub fn acquire_consumer(&self, id: &str) -> Result<Permit, Error> {
        self.permit(id, Held::Consumers)
    }
    /// Takes one consumer group, released when the permit drops.
    ///
    /// # Errors
    ///
    /// As [`Manager::enforce_consumer_group_quota`].
    pub fn acquire_consumer_group(&self, id: &str) -> Result<Permit, Error> {
        self.permit(id, Held::ConsumerGroups)
    }

    // ----- monitoring ------------------------------------------------------

    /// A tenant's usage now.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn get_usage(&self, id: &str) -> Result<Usage, Error> {
        self.lookup(id, |t| t.get_usage())
    }

    /// Every tenant's usage, by id.
    pub fn get_all_usage(&self) -> BTreeMap<String, Usage> {
        // Collected first and built in one go (`BTreeMap::from_iter` sorts,
        // then builds the tree bottom-up): inserting in the map's hash order
        // one by one was the slow part over a million tenants.
        let mut all = Vec::with_capacity(self.registry.len());
        self.registry.for_each(|t| {
            let usage = t.get_usage();
            all.push((usage.tenant_id.clone(), usage));
        });
        all.into_iter().collect()
    }

    /// Percent in use of every quota but retention, keyed by
    /// [`QuotaType::as_str`]; unlimited quotas count as 0.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn get_utilization(&self, id: &str) -> Result<BTreeMap<String, f64>, Error> {
        self.lookup(id, |t| utilization_map(&t.get_usage(), &t.quotas()))
    }

    /// The tenant, its usage and its utilization, read together.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn get_tenant_stats(&self, id: &str) -> Result<TenantStats, Error> {
        self.lookup(id, |t| {
            let tenant = tenant_of(t);
            let usage = t.get_usage();
            let utilization = utilization_map(&usage, &tenant.quotas);
            TenantStats {
                tenant,
                usage,
                utilization,
            }
        })
    }

    /// A tenant's lifetime admitted and refused counters.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn get_counters(&self, id: &str) -> Result<crate::TenantCounters, Error> {
        self.lookup(id, |t| t.counters())
    }

    /// Attaches a cluster sync's hooks: from now on every tenant is capped
    /// at its unfollowed share and watched (see `cluster_hooks.rs`).
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn attach_cluster(&self) -> &crate::cluster_hooks::ClusterHooks {
        let hooks = self.clock.attach_cluster();
        // Tenants inserted from here on are capped and watched by `insert`;
        // those already in are done here (both, for one inserted meanwhile).
        self.for_each_tracker(|t| {
            t.cap_rates(hooks.unfollowed_caps(&t.quotas(), self.clock.geometry()));
            t.rewatch();
        });
        hooks
    }

    /// The window geometry.
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn geometry(&self) -> crate::clock::Geometry {
        *self.clock.geometry()
    }

    /// The attached cluster sync's hooks.
    #[cfg_attr(not(any(feature = "cluster", quota_loom)), allow(dead_code))]
    pub(crate) fn cluster_hooks(&self) -> Option<&crate::cluster_hooks::ClusterHooks> {
        self.clock.cluster()
    }

    /// Visits every tenant's tracker, borrowed for the call (a weakly
    /// consistent view: tenants created or deleted meanwhile may or may not
    /// be seen). For readers that walk every tenant without copying them.
    #[cfg_attr(not(any(feature = "server", quota_loom)), allow(dead_code))]
    pub(crate) fn for_each_tracker(&self, f: impl FnMut(&Arc<QuotaTracker>)) {
        self.registry.for_each(f)
    }

    /// The tenant's hot-path handle; cache it per connection to skip the map
    /// lookup on every call.
    ///
    /// # Errors
    ///
    /// [`Error::TenantNotFound`].
    pub fn get_tracker(&self, id: &str) -> Result<Arc<QuotaTracker>, Error> {
        self.lookup(id, Arc::clone)
    }
}

#[cold]
#[inline(never)]
fn not_found(id: &str) -> Error {
    Error::TenantNotFound(id.to_owned())
}

fn tenant_of(t: &QuotaTracker) -> Tenant {
    let info = t.info.load();
    Tenant {
        id: t.id().to_owned(),
        name: info.name.to_string(),
        description: info.description.to_string(),
        created_at: from_nanos(info.created_at_ns),
        updated_at: from_nanos(info.updated_at_ns),
        quotas: t.quotas(),
        metadata: info.metadata.clone(),
        status: t.status(),
    }
}

/// The utilization map: every quota type but retention.
pub(crate) fn utilization_map(usage: &Usage, quotas: &Quotas) -> BTreeMap<String, f64> {
    QuotaType::ALL
        .into_iter()
        .filter(|q| *q != QuotaType::RetentionHours)
        .map(|q| (q.as_str().to_owned(), utilization(usage, quotas, q)))
        .collect()
}
