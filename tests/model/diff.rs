//! The engine and the model side by side: every operation is applied to both
//! and every answer and every reading must agree.
//!
//! # Engine bugs this harness found
//!
//! Three engine bugs were found by these tests and are now fixed, each pinned
//! by a test in `tests/regressions.rs`. The switches below steered around
//! them while they were open; they stay (set to false) so a reader can see
//! what was skipped and re-enable a detour when bisecting:
//!
//! 1. [`AVOID_SATURATED_ROLLBACK`]: a refused call rolled back an amount that
//!    saturated a bucket of an earlier window (more than was added).
//! 2. [`AVOID_LONG_WINDOW_SATURATION`]: windows longer than 1 s turned a
//!    per-second quota of up to 2^39-1 into a window limit above what a
//!    bucket holds. The window limit is now capped at 2^39-1.
//! 3. [`AVOID_STAMP_ALIASING`]: a window idle for a multiple of 2^24 ticks
//!    counted an old slot again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quanta::Mock;
use streambus_tenancy::{Error, HeldUsage, Manager, Permit, QuotaTracker, Quotas, TenantStatus};

use super::{Geometry, Held, Model, Now};

/// Bug 1 of the module docs (`regressions::refused_call_keeps_earlier_usage`).
pub const AVOID_SATURATED_ROLLBACK: bool = false;
/// Bug 2 of the module docs (`regressions::long_window_never_admits_past_limit`).
pub const AVOID_LONG_WINDOW_SATURATION: bool = false;
/// Bug 3 of the module docs (`regressions::idle_for_2_pow_24_buckets_forgets_old_traffic`).
pub const AVOID_STAMP_ALIASING: bool = false;

/// How many trackers and permits the harness keeps at most.
const MAX_HANDLES: usize = 16;

/// A call on one tenant, by id through the manager or on a held tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Produce {
        bytes: u64,
        messages: u64,
    },
    Consume {
        bytes: u64,
        messages: u64,
    },
    Request,
    /// `check_throughput` (by id: through `get_tracker`).
    Check {
        bytes: u64,
        messages: u64,
    },
    /// `record_throughput` (by id: through `get_tracker`).
    Record {
        bytes: u64,
        messages: u64,
    },
    Acquire(Held),
    Release(Held),
    Topic(u32),
    ReleaseTopic(u32),
    Storage(u64),
    UpdateStorage(u64),
    Retention(u64),
    /// `restore_usage`: every held count and the storage set, unchecked.
    RestoreUsage(HeldUsage),
    /// `throttle_produce`: recorded, answered with a delay.
    ThrottleProduce {
        bytes: u64,
        messages: u64,
    },
    /// `throttle_consume`.
    ThrottleConsume {
        bytes: u64,
        messages: u64,
    },
}

impl Call {
    /// A throttle call's amounts (bytes, messages, one request).
    pub fn throttle_amounts(self) -> Option<[u64; 3]> {
        match self {
            Call::ThrottleProduce { bytes, messages }
            | Call::ThrottleConsume { bytes, messages } => Some([bytes, messages, 1]),
            _ => None,
        }
    }
}

/// One step of a test.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Create {
        id: String,
        name: String,
        quotas: Quotas,
    },
    /// `Manager::restore` with a chosen status.
    Restore {
        id: String,
        name: String,
        quotas: Quotas,
        status: TenantStatus,
    },
    Update {
        id: String,
        name: Option<String>,
        quotas: Option<Quotas>,
    },
    Delete(String),
    Suspend(String),
    Activate(String),
    Call {
        id: String,
        call: Call,
    },
    Permit {
        id: String,
        kind: Held,
    },
    DropPermit(usize),
    GetTracker(String),
    OnTracker {
        index: usize,
        call: Call,
    },
    Advance(u64),
    Rewind(u64),
}

/// Counts of what a run exercised, for tests to assert they tested something.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub ops: u64,
    pub admitted: u64,
    pub rate_refusals: u64,
    pub retry_probes: u64,
    pub skipped: u64,
    /// Throttle calls answered with a delay, and with none.
    pub throttled: u64,
    pub unthrottled: u64,
}

/// Did two errors say the same thing? Validation messages are prose: the
/// model gives the field that must be named (or nothing), the engine's
/// message must name it.
pub fn same_error(engine: &Error, model: &Error) -> bool {
    match (engine, model) {
        (Error::InvalidQuotas(e), Error::InvalidQuotas(field)) => {
            e.starts_with(&format!("{field} "))
        }
        (Error::InvalidTenantId(e), Error::InvalidTenantId(_))
        | (Error::InvalidName(e), Error::InvalidName(_))
        | (Error::InvalidConfig(e), Error::InvalidConfig(_)) => !e.is_empty(),
        _ => engine == model,
    }
}

fn assert_same<T: std::fmt::Debug>(
    op: &dyn std::fmt::Debug,
    engine: &Result<T, Error>,
    model: &Result<(), Error>,
) {
    let same = match (engine, model) {
        (Ok(_), Ok(())) => true,
        (Err(e), Err(m)) => same_error(e, m),
        _ => false,
    };
    assert!(
        same,
        "engine and model disagree on {op:?}\n engine: {engine:?}\n  model: {model:?}"
    );
}

/// A manager on a mock clock, its model, and the handles a test holds.
pub struct Harness {
    pub manager: Manager,
    pub mock: Arc<Mock>,
    pub model: Model,
    trackers: Vec<(Arc<QuotaTracker>, usize)>,
    permits: Vec<(Permit, usize, Held)>,
    /// Ids whose state is compared after every step.
    watched: Vec<String>,
    pub stats: Stats,
    /// The engine's answer to the last call (`None` for other steps and
    /// skipped calls).
    pub last: Option<Result<(), Error>>,
}

impl Harness {
    /// A manager with this window; `None` (after checking that the builder
    /// refuses it with `InvalidConfig`) if the model says it is invalid.
    pub fn new(window: Duration, buckets: usize, watched: &[String]) -> Option<Harness> {
        let (clock, mock) = quanta::Clock::mock();
        let built = Manager::builder()
            .clock(clock)
            .window(window)
            .buckets(buckets)
            .try_build();
        let Some(geometry) = Geometry::new(window, buckets) else {
            match built {
                Err(Error::InvalidConfig(m)) => assert!(!m.is_empty()),
                other => panic!("window {window:?} x {buckets} must be refused, got {other:?}"),
            }
            return None;
        };
        let manager = built.unwrap_or_else(|e| panic!("{window:?} x {buckets}: {e}"));
        assert_eq!(manager.window(), window);
        assert_eq!(manager.buckets(), buckets);
        Some(Harness {
            manager,
            mock,
            model: Model::new(geometry),
            trackers: Vec::new(),
            permits: Vec::new(),
            watched: watched.to_vec(),
            stats: Stats::default(),
            last: None,
        })
    }

    fn g(&self) -> Geometry {
        self.model.geometry
    }

    /// Quotas as the test may use them (bug 2 of the module docs).
    fn sanitize(&self, mut q: Quotas) -> Quotas {
        if AVOID_LONG_WINDOW_SATURATION {
            let top = self.g().largest_exact_quota();
            for f in [
                &mut q.max_bytes_per_second,
                &mut q.max_messages_per_second,
                &mut q.max_requests_per_second,
            ] {
                if *f > top && *f <= streambus_tenancy::MAX_RATE_QUOTA {
                    *f = top;
                }
            }
        }
        q
    }

    /// Applies one step to both sides, compares, then compares all state.
    pub fn step(&mut self, op: &Op) {
        self.apply(op);
        self.check_state(op);
    }

    /// Applies one step to both sides and compares the answers.
    pub fn apply(&mut self, op: &Op) {
        self.stats.ops += 1;
        self.last = None;
        match op {
            Op::Create { id, name, quotas } => {
                let q = self.sanitize(*quotas);
                let e = self.manager.create_tenant(id, name, q);
                let m = self.model.insert(id, name, q, TenantStatus::Active);
                assert_same(op, &e, &m);
                if let Ok(t) = e {
                    assert_eq!(
                        (t.id.as_str(), t.name.as_str(), t.quotas),
                        (id.as_str(), name.as_str(), q)
                    );
                    assert_eq!(t.status, TenantStatus::Active);
                }
            }
            Op::Restore {
                id,
                name,
                quotas,
                status,
            } => {
                let q = self.sanitize(*quotas);
                let now = std::time::SystemTime::now();
                let e = self.manager.restore(streambus_tenancy::Tenant {
                    id: id.clone(),
                    name: name.clone(),
                    description: String::new(),
                    created_at: now,
                    updated_at: now,
                    quotas: q,
                    metadata: BTreeMap::new(),
                    status: *status,
                });
                let m = self.model.insert(id, name, q, *status);
                assert_same(op, &e, &m);
            }
            Op::Update { id, name, quotas } => {
                let q = quotas.map(|q| self.sanitize(q));
                let e = self.manager.update_tenant(id, name.as_deref(), q);
                let m = self.model.update(id, name.as_deref(), q);
                assert_same(op, &e, &m);
            }
            Op::Delete(id) => {
                let e = self.manager.delete_tenant(id);
                let m = self.model.delete(id);
                assert_same(op, &e, &m);
            }
            Op::Suspend(id) => {
                let e = self.manager.suspend_tenant(id);
                let m = self.model.set_status(id, TenantStatus::Suspended);
                assert_same(op, &e, &m);
            }
            Op::Activate(id) => {
                let e = self.manager.activate_tenant(id);
                let m = self.model.set_status(id, TenantStatus::Active);
                assert_same(op, &e, &m);
            }
            Op::Call { id, call } => self.call_by_id(op, id, *call),
            Op::Permit { id, kind } => {
                let (g, now) = (self.g(), self.model.now());
                let e = match kind {
                    Held::Connections => self.manager.acquire_connection(id),
                    Held::Producers => self.manager.acquire_producer(id),
                    Held::Consumers => self.manager.acquire_consumer(id),
                    Held::ConsumerGroups => self.manager.acquire_consumer_group(id),
                };
                let m = self
                    .model
                    .lookup(id)
                    .and_then(|i| self.model.instances[i].acquire(*kind, now, &g).map(|()| i));
                assert_same(op, &e, &m.clone().map(|_| ()));
                if let (Ok(p), Ok(i)) = (e, m) {
                    assert_eq!(
                        (p.tenant_id(), p.quota_type()),
                        (id.as_str(), kind.quota_type())
                    );
                    if self.permits.len() == MAX_HANDLES {
                        self.drop_permit(0);
                    }
                    self.permits.push((p, i, *kind));
                }
            }
            Op::DropPermit(k) => {
                if !self.permits.is_empty() {
                    self.drop_permit(k % self.permits.len());
                }
            }
            Op::GetTracker(id) => {
                let e = self.manager.get_tracker(id);
                let m = self.model.lookup(id);
                assert_same(op, &e, &m.clone().map(|_| ()));
                if let (Ok(t), Ok(i)) = (e, m) {
                    assert_eq!(t.id(), id);
                    if self.trackers.len() == MAX_HANDLES {
                        self.trackers.remove(0);
                    }
                    self.trackers.push((t, i));
                }
            }
            Op::OnTracker { index, call } => {
                if !self.trackers.is_empty() {
                    let k = index % self.trackers.len();
                    let (t, i) = (Arc::clone(&self.trackers[k].0), self.trackers[k].1);
                    self.call_on(op, &t, i, *call);
                }
            }
            Op::Advance(nanos) => {
                let mut nanos = (*nanos).min(u64::MAX - self.mock.value());
                if AVOID_STAMP_ALIASING {
                    let g = self.g();
                    let last = ((1u64 << 24) - 2 * g.buckets).saturating_mul(g.bucket_nanos) - 1;
                    nanos = nanos.min(last.saturating_sub(self.mock.value()));
                }
                self.mock.increment(nanos);
                self.model.nanos += nanos;
            }
            Op::Rewind(nanos) => {
                let nanos = (*nanos).min(self.mock.value());
                self.mock.decrement(nanos);
                self.model.nanos -= nanos;
            }
        }
    }

    fn drop_permit(&mut self, k: usize) {
        let (p, i, kind) = self.permits.remove(k);
        drop(p);
        self.model.instances[i].release(kind);
    }

    fn call_by_id(&mut self, op: &Op, id: &str, call: Call) {
        if call.throttle_amounts().is_some() {
            let e = match call {
                Call::ThrottleProduce { bytes, messages } => {
                    self.manager.throttle_produce_quota(id, bytes, messages)
                }
                _ => self
                    .manager
                    .throttle_consume_quota(id, bytes_of(call), messages_of(call)),
            };
            let i = self.model.lookup(id);
            return self.throttle_compare(op, e, i, call);
        }
        let m = &self.manager;
        let (e, skip_model_lookup) = match call {
            Call::Release(h) => {
                match h {
                    Held::Connections => m.release_connection(id),
                    Held::Producers => m.release_producer(id),
                    Held::Consumers => m.release_consumer(id),
                    Held::ConsumerGroups => m.release_consumer_group(id),
                }
                if let Ok(i) = self.model.lookup(id) {
                    self.model.instances[i].release(h);
                }
                return;
            }
            Call::ReleaseTopic(p) => {
                m.release_topic(id, p);
                if let Ok(i) = self.model.lookup(id) {
                    self.model.instances[i].remove_topic(p);
                }
                return;
            }
            Call::Check { .. } | Call::Record { .. } => match m.get_tracker(id) {
                Ok(t) => {
                    let i = self.model.lookup(id).expect("the model has the tenant too");
                    return self.call_on(op, &t, i, call);
                }
                Err(e) => (Err(e), true),
            },
            _ => (Ok(()), false),
        };
        let i = match self.model.lookup(id) {
            Ok(i) => i,
            Err(not_found) => {
                let e = if skip_model_lookup {
                    e
                } else {
                    self.engine_by_id(id, call)
                };
                assert_same(op, &e, &Err(not_found));
                return;
            }
        };
        assert!(!skip_model_lookup, "{op:?}: engine lost a tenant: {e:?}");
        let Some(m) = self.model_call(op, i, call) else {
            return;
        };
        let e = self.engine_by_id(id, call);
        self.compare_call(op, e, m);
    }

    fn engine_by_id(&self, id: &str, call: Call) -> Result<(), Error> {
        let m = &self.manager;
        match call {
            Call::Produce { bytes, messages } => m.enforce_produce_quota(id, bytes, messages),
            Call::Consume { bytes, messages } => m.enforce_consume_quota(id, bytes, messages),
            Call::Request => m.enforce_request_quota(id),
            Call::Acquire(Held::Connections) => m.enforce_connection_quota(id),
            Call::Acquire(Held::Producers) => m.enforce_producer_quota(id),
            Call::Acquire(Held::Consumers) => m.enforce_consumer_quota(id),
            Call::Acquire(Held::ConsumerGroups) => m.enforce_consumer_group_quota(id),
            Call::Topic(p) => m.enforce_topic_quota(id, p),
            Call::Storage(b) => m.enforce_storage_quota(id, b),
            Call::UpdateStorage(b) => m.update_storage_usage(id, b),
            Call::RestoreUsage(h) => m.restore_usage(id, &h),
            Call::Retention(h) => m.enforce_retention_quota(id, h),
            Call::Check { .. }
            | Call::Record { .. }
            | Call::Release(_)
            | Call::ReleaseTopic(_)
            | Call::ThrottleProduce { .. }
            | Call::ThrottleConsume { .. } => {
                unreachable!("handled by call_by_id")
            }
        }
    }

    fn call_on(&mut self, op: &Op, t: &QuotaTracker, i: usize, call: Call) {
        if call.throttle_amounts().is_some() {
            let e = match call {
                Call::ThrottleProduce { bytes, messages } => t.throttle_produce(bytes, messages),
                _ => t.throttle_consume(bytes_of(call), messages_of(call)),
            };
            return self.throttle_compare(op, e, Ok(i), call);
        }
        let Some(m) = self.model_call(op, i, call) else {
            return;
        };
        let e = match call {
            Call::Produce { bytes, messages } => t.enforce_produce(bytes, messages),
            Call::Consume { bytes, messages } => t.enforce_consume(bytes, messages),
            Call::Request => t.enforce_request(),
            Call::Check { bytes, messages } => t.check_throughput(bytes, messages),
            Call::Record { bytes, messages } => {
                t.record_throughput(bytes, messages);
                Ok(())
            }
            Call::Acquire(Held::Connections) => t.add_connection(),
            Call::Acquire(Held::Producers) => t.add_producer(),
            Call::Acquire(Held::Consumers) => t.add_consumer(),
            Call::Acquire(Held::ConsumerGroups) => t.add_consumer_group(),
            Call::Release(Held::Connections) => {
                t.remove_connection();
                Ok(())
            }
            Call::Release(Held::Producers) => {
                t.remove_producer();
                Ok(())
            }
            Call::Release(Held::Consumers) => {
                t.remove_consumer();
                Ok(())
            }
            Call::Release(Held::ConsumerGroups) => {
                t.remove_consumer_group();
                Ok(())
            }
            Call::Topic(p) => t.add_topic(p),
            Call::ReleaseTopic(p) => {
                t.remove_topic(p);
                Ok(())
            }
            Call::Storage(b) => t.check_storage(b),
            Call::UpdateStorage(b) => {
                t.update_storage(b);
                Ok(())
            }
            Call::RestoreUsage(h) => {
                t.restore_usage(&h);
                Ok(())
            }
            Call::Retention(h) => t.check_retention(h),
            Call::ThrottleProduce { .. } | Call::ThrottleConsume { .. } => {
                unreachable!("handled above")
            }
        };
        self.compare_call(op, e, m);
    }

    /// A throttle call's engine answer `e` against the model's on instance
    /// `i` (or its lookup error): the same error, or exactly the same delay.
    fn throttle_compare(
        &mut self,
        op: &Op,
        e: Result<Duration, Error>,
        i: Result<usize, Error>,
        call: Call,
    ) {
        let amounts = call.throttle_amounts().expect("a throttle call");
        let g = self.g();
        let now = self.model.now();
        let m = i.and_then(|i| {
            self.model.instances[i].throttle(
                amounts,
                now,
                &g,
                super::throttle::DEFAULT_MAX_THROTTLE,
            )
        });
        let same = match (&e, &m) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => same_error(a, b),
            _ => false,
        };
        assert!(
            same,
            "engine and model disagree on {op:?}\n engine: {e:?}\n  model: {m:?}"
        );
        match e {
            Ok(d) if d.is_zero() => self.stats.unthrottled += 1,
            Ok(_) => self.stats.throttled += 1,
            Err(_) => {}
        }
        self.last = Some(e.map(|_| ()));
    }

    /// The model's answer to `call` on instance `i`, applied; `None` if the
    /// call must be skipped (bug 1 of the module docs).
    fn model_call(&mut self, op: &Op, i: usize, call: Call) -> Option<Result<(), Error>> {
        let g = self.g();
        let now = self.model.now();
        let t = &mut self.model.instances[i];
        Some(match call {
            Call::Produce { bytes, messages } | Call::Consume { bytes, messages } => {
                return self.rates(op, i, [bytes, messages, 1]);
            }
            Call::Request => return self.rates(op, i, [0, 0, 1]),
            Call::Check { bytes, messages } => t.check_throughput([bytes, messages, 1], now, &g),
            Call::Record { bytes, messages } => {
                t.record_throughput([bytes, messages, 1], now, &g);
                Ok(())
            }
            Call::Acquire(h) => t.acquire(h, now, &g),
            Call::Release(h) => {
                t.release(h);
                Ok(())
            }
            Call::Topic(p) => t.add_topic(p),
            Call::ReleaseTopic(p) => {
                t.remove_topic(p);
                Ok(())
            }
            Call::Storage(b) => t.check_storage(b),
            Call::UpdateStorage(b) => {
                t.storage = b;
                Ok(())
            }
            Call::RestoreUsage(h) => {
                t.restore_usage(&h);
                Ok(())
            }
            Call::Retention(h) => t.check_retention(h),
            Call::ThrottleProduce { .. } | Call::ThrottleConsume { .. } => {
                unreachable!("handled by throttle_compare")
            }
        })
    }

    /// A produce/consume/request on instance `i`: decide, check the decision
    /// against the spec, apply.
    fn rates(&mut self, op: &Op, i: usize, amounts: [u64; 3]) -> Option<Result<(), Error>> {
        let g = self.g();
        let now = self.model.now();
        let t = &self.model.instances[i];
        let d = t.decide_rates(amounts, now, &g);
        if AVOID_SATURATED_ROLLBACK && d.saturated_rollback {
            self.stats.skipped += 1;
            return None;
        }
        assert_eq!(
            d.over_limit, None,
            "{op:?} admitted past the limit (exact sums)"
        );
        if let Err(Error::QuotaExceeded(e)) = &d.result {
            self.stats.rate_refusals += 1;
            // `retry_after`'s promise, checked on the model itself: after it
            // the same call fits, and not a nanosecond earlier. Not checked
            // after the clock went back (the wait counts from the window's
            // newer head), nor within a window of the clock's end (u64::MAX
            // ns, where expiry times saturate and the wait reads 0).
            let monotonic = t.windows.iter().all(|w| w.head <= now.tick);
            let before_end = now.nanos <= u64::MAX - 2 * g.window_nanos();
            if let (Some(wait), true) = (e.retry_after, monotonic && before_end) {
                let wait = wait.as_nanos() as u64;
                {
                    let later = now.nanos + wait;
                    self.stats.retry_probes += 1;
                    let at = |nanos: u64| Now {
                        tick: nanos / g.bucket_nanos,
                        nanos,
                    };
                    let retried = t.decide_rates(amounts, at(later), &g);
                    assert!(
                        retried.result.is_ok(),
                        "{op:?}: still refused after retry_after {wait} ns: {:?}",
                        retried.result
                    );
                    assert!(wait > 0, "{op:?}: refused with retry_after 0");
                    let early = t.decide_rates(amounts, at(later - 1), &g);
                    assert!(
                        early.result.is_err(),
                        "{op:?}: retry_after {wait} ns is not the smallest wait"
                    );
                }
            }
        }
        let t = &mut self.model.instances[i];
        Some(t.apply_rates(amounts, &d))
    }

    fn compare_call(&mut self, op: &Op, e: Result<(), Error>, m: Result<(), Error>) {
        assert_same(op, &e, &m);
        if e.is_ok() {
            self.stats.admitted += 1;
        }
        self.last = Some(e);
    }

    /// Compares everything readable: tenants, usage, utilization, counters,
    /// the registry, and every held tracker.
    pub fn check_state(&self, op: &Op) {
        let g = self.g();
        let now = self.model.now();
        let model = &self.model;
        assert_eq!(self.manager.len(), model.registry.len(), "after {op:?}");
        let listed: Vec<String> = self
            .manager
            .list_tenants()
            .into_iter()
            .map(|t| t.id)
            .collect();
        let ids: Vec<String> = model.registry.keys().cloned().collect();
        assert_eq!(listed, ids, "list_tenants after {op:?}");
        // The same ids page by page, two at a time.
        let (mut paged, mut after) = (Vec::new(), None::<String>);
        loop {
            let page = self.manager.list_tenants_page(after.as_deref(), 2);
            assert_eq!(page.total, ids.len(), "total after {op:?}");
            paged.extend(page.tenants.into_iter().map(|t| t.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, ids, "list_tenants_page after {op:?}");
        let all = self.manager.get_all_usage();
        let expected: BTreeMap<String, _> = model
            .registry
            .iter()
            .map(|(id, &i)| (id.clone(), model.instances[i].usage(now, &g)))
            .collect();
        assert_eq!(all, expected, "get_all_usage after {op:?}");
        for id in &self.watched {
            let Ok(i) = model.lookup(id) else {
                let missing = Err(Error::TenantNotFound(id.clone()));
                assert_eq!(
                    self.manager.get_tenant(id).map(|_| ()),
                    missing,
                    "after {op:?}"
                );
                assert_eq!(
                    self.manager.get_usage(id).map(|_| ()),
                    missing,
                    "after {op:?}"
                );
                continue;
            };
            let t = &model.instances[i];
            let tenant = self.manager.get_tenant(id).expect("listed");
            assert_eq!(
                (
                    tenant.id.as_str(),
                    tenant.name.as_str(),
                    tenant.quotas,
                    tenant.status
                ),
                (t.id.as_str(), t.name.as_str(), t.quotas, t.status),
                "get_tenant after {op:?}"
            );
            assert!(tenant.created_at <= tenant.updated_at);
            let stats = self.manager.get_tenant_stats(id).expect("listed");
            assert_eq!(
                stats.usage,
                t.usage(now, &g),
                "get_tenant_stats after {op:?}"
            );
            assert_eq!(
                stats.utilization,
                t.utilization(now, &g),
                "utilization after {op:?}"
            );
            assert_eq!(self.manager.get_utilization(id).unwrap(), stats.utilization);
            assert_eq!(
                self.manager.get_counters(id).unwrap(),
                t.counters(),
                "counters after {op:?}"
            );
        }
        for (tracker, i) in &self.trackers {
            let t = &model.instances[*i];
            assert_eq!(tracker.status(), t.status, "tracker status after {op:?}");
            assert_eq!(tracker.quotas(), t.quotas);
            assert_eq!(
                tracker.get_usage(),
                t.usage(now, &g),
                "tracker usage after {op:?}"
            );
            assert_eq!(
                tracker.counters(),
                t.counters(),
                "tracker counters after {op:?}"
            );
        }
    }
}

fn bytes_of(call: Call) -> u64 {
    call.throttle_amounts().map_or(0, |a| a[0])
}

fn messages_of(call: Call) -> u64 {
    call.throttle_amounts().map_or(0, |a| a[1])
}

/// Tenant ids a test draws from: valid ones (watched) and ones every call
/// must refuse.
pub fn valid_ids() -> Vec<String> {
    vec![
        "a".into(),
        "b".into(),
        "Tenant-1.x_Y".into(),
        "z".repeat(128),
    ]
}

pub fn invalid_ids() -> Vec<String> {
    vec![
        String::new(),
        "z".repeat(129),
        "has space".into(),
        "slash/y".into(),
        "é".into(),
        "nul\0".into(),
        "new\nline".into(),
        "emoji🙂".into(),
        "a".repeat(1000),
        ".".into(),
        "..".into(),
    ]
}

/// Names a test draws from: valid and invalid.
pub fn names() -> Vec<String> {
    vec![
        "A".into(),
        "ACME Corporation".into(),
        "ü".repeat(128),
        "n".repeat(256),
        "ü".repeat(256),
        String::new(),
        "n".repeat(257),
        "ü".repeat(257),
        "tab\there".into(),
        "nul\0".into(),
        "del\u{7f}".into(),
        "nel\u{85}".into(),
    ]
}
