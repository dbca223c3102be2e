//! The reference model: the engine's semantics, single-threaded, plain and slow.
//!
//! Nothing here is clever. A rate window is a list of `(tick, amount)` entries
//! and a sum over the ticks in range; a count is a `u64`; a tenant is a struct
//! in a `Vec`; the registry is a `BTreeMap` from id to the index of the
//! tenant's current instance (instances of deleted tenants stay in the `Vec`,
//! so handles taken before a delete keep pointing at the old one).
//!
//! It follows the engine's documented semantics and its documented
//! choices, each stated where it is used:
//!
//! - A bucket is `window / buckets` long; a call at `nanos` since the manager
//!   was built falls in tick `nanos / bucket_nanos`. A rate call at tick `T`
//!   sees the amounts of ticks `T-n+1 ..= T`.
//! - Per-second quotas become per-window limits as `quota * window / 1 s`.
//! - Produce and consume count bytes, messages and one request, checked in
//!   that order, all or nothing; the first window that refuses is reported.
//!   Unlimited (`-1`) windows record without checking.
//! - A bucket holds at most `2^39 - 1` (documented saturation, reached only by
//!   unlimited windows): the amount a tick holds is `min(sum, 2^39 - 1)`.
//! - A window never goes back in time: a call whose clock reading is older
//!   than the newest tick the window was written at is counted at that tick,
//!   and the rest of the call reads time from there (window.rs, "Rotation").
//!   With a clock that only moves forward this rule never applies.
//!
//! Shared by `tests/proptest_model.rs` and the fuzz targets (through
//! `#[path]`), so there is one copy. `diff.rs` drives the engine and the model
//! side by side and compares every answer.

#![allow(dead_code)]

pub mod diff;
pub mod throttle;
mod window;

pub use window::{Geometry, Now, Window};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use streambus_tenancy::{
    Error, HeldUsage, QuotaError, QuotaType, Quotas, TenantCounters, TenantStatus, Usage,
    MAX_RATE_QUOTA,
};

/// Largest amount one bucket holds (the engine's documented saturation).
pub const BUCKET_MAX: u64 = MAX_RATE_QUOTA as u64;
/// Amounts the generators (proptest and the fuzz targets) favour: round
/// numbers on either side of the round quotas they also draw...
pub const ROUND_AMOUNTS: [u64; 9] = [0, 1, 99, 100, 101, 999, 1000, 1001, 10_000];
/// ...and the edges of a bucket and of `u64`.
pub const EDGE_AMOUNTS: [u64; 6] = [
    BUCKET_MAX - 1,
    BUCKET_MAX,
    BUCKET_MAX + 1,
    u64::MAX / 2,
    u64::MAX - 1,
    u64::MAX,
];
/// Rate quota types, in the order a call checks them.
pub const RATES: [QuotaType; 3] = [
    QuotaType::BytesPerSecond,
    QuotaType::MessagesPerSecond,
    QuotaType::RequestsPerSecond,
];

/// Count quotas, in the order the engine stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Connections,
    Producers,
    Consumers,
    ConsumerGroups,
}

impl Held {
    pub const ALL: [Held; 4] = [
        Held::Connections,
        Held::Producers,
        Held::Consumers,
        Held::ConsumerGroups,
    ];

    pub fn quota_type(self) -> QuotaType {
        match self {
            Held::Connections => QuotaType::Connections,
            Held::Producers => QuotaType::Producers,
            Held::Consumers => QuotaType::Consumers,
            Held::ConsumerGroups => QuotaType::ConsumerGroups,
        }
    }
}

/// One tenant instance: what a `QuotaTracker` holds.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub quotas: Quotas,
    pub status: TenantStatus,
    pub windows: [Window; 3],
    /// Connections opened (`max_connection_creation_rate`).
    pub opened: Window,
    pub held: [u64; 4],
    pub topics: u64,
    pub partitions: u64,
    pub storage: u64,
    pub refused: [u64; QuotaType::COUNT],
    pub refused_not_active: u64,
    /// Throttle mode's backlogs (`throttle.rs`).
    pub throttle: throttle::Backlogs,
}

/// What a rate call decided, before anything is applied.
#[derive(Clone, Debug)]
pub struct RateDecision {
    pub result: Result<(), Error>,
    /// Ticks the call's amounts go to (admitted calls).
    ticks: [u64; 3],
    /// The windows' heads after the call.
    heads: [u64; 3],
    /// A window that recorded part of a refused call had its bucket saturated
    /// by that part (the engine mishandles this roll-back: see diff.rs).
    pub saturated_rollback: bool,
    /// Admitted, yet the exact sum of a limited window now exceeds its limit.
    pub over_limit: Option<QuotaType>,
}

impl Tenant {
    pub fn new(id: &str, name: &str, quotas: Quotas, status: TenantStatus) -> Tenant {
        Tenant {
            id: id.to_owned(),
            name: name.to_owned(),
            quotas,
            status,
            windows: Default::default(),
            opened: Window::default(),
            held: [0; 4],
            topics: 0,
            partitions: 0,
            storage: 0,
            refused: [0; QuotaType::COUNT],
            refused_not_active: 0,
            throttle: Default::default(),
        }
    }

    fn rate_limits(&self) -> [i64; 3] {
        RATES.map(|q| self.quotas.get(q))
    }

    fn not_active(&mut self) -> Error {
        self.refused_not_active += 1;
        Error::TenantNotActive {
            id: self.id.clone(),
            status: self.status,
        }
    }

    fn refusal(
        &mut self,
        quota_type: QuotaType,
        current: u64,
        limit: i64,
        retry: Option<Duration>,
    ) -> Error {
        self.refused[quota_type.index()] += 1;
        Error::QuotaExceeded(QuotaError {
            tenant_id: Arc::from(self.id.as_str()),
            quota_type,
            current: current.min(i64::MAX as u64) as i64,
            limit,
            retry_after: retry,
        })
    }

    /// `retry_after` of a rate refusal: every limited window must have room
    /// for its share; `None` if one never will.
    fn combined_retry(&self, now: Now, amounts: [u64; 3], g: &Geometry) -> Option<Duration> {
        let mut wait = Duration::ZERO;
        for (r, limit) in self.rate_limits().into_iter().enumerate() {
            if limit < 0 {
                continue;
            }
            wait = wait.max(self.windows[r].retry_after(now, amounts[r], g.limit(limit), g)?);
        }
        Some(wait)
    }

    /// Decides a produce/consume/request call without changing anything.
    pub fn decide_rates(&self, amounts: [u64; 3], reading: Now, g: &Geometry) -> RateDecision {
        let mut d = RateDecision {
            result: Ok(()),
            ticks: [0; 3],
            heads: self.windows.clone().map(|w| w.head),
            saturated_rollback: false,
            over_limit: None,
        };
        if self.status != TenantStatus::Active {
            d.result = Err(Error::TenantNotActive {
                id: self.id.clone(),
                status: self.status,
            });
            return d;
        }
        // A scratch copy: writes move heads (and `now`), amounts go in
        // tentatively and come out again if a later window refuses.
        let mut scratch = self.windows.clone();
        let mut now = reading;
        let limits = self.rate_limits();
        let mut refused = None;
        for r in 0..3 {
            let w = &mut scratch[r];
            if limits[r] < 0 {
                if amounts[r] != 0 {
                    w.touch(&mut now, g);
                    d.saturated_rollback |= w.saturates(now.tick, amounts[r]);
                    d.ticks[r] = now.tick;
                    w.add(now.tick, amounts[r]);
                }
                continue;
            }
            let limit = g.limit(limits[r]);
            if amounts[r] > limit {
                refused = Some((r, w.used(now, g.buckets)));
                break;
            }
            w.touch(&mut now, g);
            let used = w.used(now, g.buckets);
            if used.saturating_add(amounts[r]) > limit {
                refused = Some((r, used));
                break;
            }
            if amounts[r] != 0
                && w.true_used(now.tick, g.buckets) + amounts[r] as u128 > limit as u128
            {
                d.over_limit.get_or_insert(RATES[r]);
            }
            d.saturated_rollback |= w.saturates(now.tick, amounts[r]);
            d.ticks[r] = now.tick;
            w.add(now.tick, amounts[r]);
        }
        match refused {
            None => d.saturated_rollback = false,
            Some((r, used)) => {
                for back in 0..r {
                    scratch[back].take_back(d.ticks[back], amounts[back]);
                }
                d.over_limit = None;
                let probe = Tenant {
                    windows: scratch.clone(),
                    ..self.clone()
                };
                let retry = probe.combined_retry(now, amounts, g);
                d.result = Err(Error::QuotaExceeded(QuotaError {
                    tenant_id: Arc::from(self.id.as_str()),
                    quota_type: RATES[r],
                    current: g.per_second(used).min(i64::MAX as u64) as i64,
                    limit: limits[r],
                    retry_after: retry,
                }));
            }
        }
        d.heads = scratch.map(|w| w.head);
        d
    }

    /// Applies what [`Tenant::decide_rates`] decided.
    pub fn apply_rates(&mut self, amounts: [u64; 3], d: &RateDecision) -> Result<(), Error> {
        for (w, &h) in self.windows.iter_mut().zip(&d.heads) {
            w.head = h;
        }
        match &d.result {
            Ok(()) => {
                for ((w, &tick), amount) in self.windows.iter_mut().zip(&d.ticks).zip(amounts) {
                    w.add(tick, amount);
                }
            }
            Err(Error::TenantNotActive { .. }) => self.refused_not_active += 1,
            Err(Error::QuotaExceeded(e)) => self.refused[e.quota_type.index()] += 1,
            Err(_) => unreachable!(),
        }
        d.result.clone()
    }

    /// The seed's first step: would the call fit? Reads time as it is (no
    /// window is written, so none adopts a newer tick) and records nothing.
    pub fn check_throughput(
        &mut self,
        amounts: [u64; 3],
        now: Now,
        g: &Geometry,
    ) -> Result<(), Error> {
        if self.status != TenantStatus::Active {
            return Err(self.not_active());
        }
        let limits = self.rate_limits();
        for r in 0..3 {
            if limits[r] < 0 {
                continue;
            }
            let used = self.windows[r].used(now, g.buckets);
            if used.saturating_add(amounts[r]) > g.limit(limits[r]) {
                let retry = self.combined_retry(now, amounts, g);
                return Err(self.refusal(RATES[r], g.per_second(used), limits[r], retry));
            }
        }
        Ok(())
    }

    /// The seed's second step: records without checking, in any status.
    pub fn record_throughput(&mut self, amounts: [u64; 3], reading: Now, g: &Geometry) {
        let mut now = reading;
        for (w, amount) in self.windows.iter_mut().zip(amounts) {
            if amount != 0 {
                w.touch(&mut now, g);
                w.add(now.tick, amount);
            }
        }
    }

    /// Takes one of a count quota if `held + 1 <= limit`; a connection must
    /// first fit the connection-creation window, and is taken back from it
    /// if the count refuses.
    pub fn acquire(&mut self, h: Held, reading: Now, g: &Geometry) -> Result<(), Error> {
        if self.status != TenantStatus::Active {
            return Err(self.not_active());
        }
        let mut opened_at = None;
        if h == Held::Connections {
            let mut now = reading;
            let rate = self.quotas.max_connection_creation_rate;
            let limit = if rate < 0 { u64::MAX } else { g.limit(rate) };
            if limit == 0 {
                let used = self.opened.used(now, g.buckets);
                let q = QuotaType::ConnectionCreationRate;
                return Err(self.refusal(q, g.per_second(used), rate, None));
            }
            self.opened.touch(&mut now, g);
            let used = self.opened.used(now, g.buckets);
            if rate >= 0 && used + 1 > limit {
                let retry = self.opened.retry_after(now, 1, limit, g);
                let q = QuotaType::ConnectionCreationRate;
                return Err(self.refusal(q, g.per_second(used), rate, retry));
            }
            self.opened.add(now.tick, 1);
            opened_at = Some(now.tick);
        }
        let limit = self.quotas.get(h.quota_type());
        let held = self.held[h as usize];
        if limit >= 0 && held.saturating_add(1) > limit as u64 {
            if let Some(tick) = opened_at {
                self.opened.take_back(tick, 1);
            }
            return Err(self.refusal(h.quota_type(), held, limit, None));
        }
        self.held[h as usize] = held.saturating_add(1);
        Ok(())
    }

    /// Gives one back; never below zero; works in every status.
    pub fn release(&mut self, h: Held) {
        self.held[h as usize] = self.held[h as usize].saturating_sub(1);
    }

    /// Sets every held count and the storage, whatever the limits, in any
    /// status.
    pub fn restore_usage(&mut self, h: &HeldUsage) {
        self.held[Held::Connections as usize] = h.connections;
        self.held[Held::Producers as usize] = h.producers;
        self.held[Held::Consumers as usize] = h.consumers;
        self.held[Held::ConsumerGroups as usize] = h.consumer_groups;
        self.topics = h.topics;
        self.partitions = h.partitions;
        self.storage = h.storage_bytes;
    }

    /// One topic and `partitions` partitions, both or neither.
    pub fn add_topic(&mut self, partitions: u32) -> Result<(), Error> {
        if self.status != TenantStatus::Active {
            return Err(self.not_active());
        }
        let q = self.quotas;
        if q.max_topics >= 0 && self.topics.saturating_add(1) > q.max_topics as u64 {
            return Err(self.refusal(QuotaType::Topics, self.topics, q.max_topics, None));
        }
        let p = u64::from(partitions);
        if q.max_partitions >= 0 && self.partitions.saturating_add(p) > q.max_partitions as u64 {
            return Err(self.refusal(
                QuotaType::Partitions,
                self.partitions,
                q.max_partitions,
                None,
            ));
        }
        self.topics = self.topics.saturating_add(1);
        self.partitions = self.partitions.saturating_add(p);
        Ok(())
    }

    pub fn remove_topic(&mut self, partitions: u32) {
        self.topics = self.topics.saturating_sub(1);
        self.partitions = self.partitions.saturating_sub(u64::from(partitions));
    }

    /// Would `bytes` more fit? Records nothing.
    pub fn check_storage(&mut self, bytes: u64) -> Result<(), Error> {
        if self.status != TenantStatus::Active {
            return Err(self.not_active());
        }
        let limit = self.quotas.max_storage_bytes;
        if limit >= 0 && self.storage.saturating_add(bytes) > limit as u64 {
            return Err(self.refusal(QuotaType::Storage, self.storage, limit, None));
        }
        Ok(())
    }

    pub fn check_retention(&mut self, hours: u64) -> Result<(), Error> {
        if self.status != TenantStatus::Active {
            return Err(self.not_active());
        }
        let limit = self.quotas.max_retention_hours;
        if limit >= 0 && hours > limit as u64 {
            return Err(self.refusal(QuotaType::RetentionHours, hours, limit, None));
        }
        Ok(())
    }

    pub fn usage(&self, now: Now, g: &Geometry) -> Usage {
        let rate = |r: usize| g.per_second(self.windows[r].used(now, g.buckets));
        Usage {
            tenant_id: self.id.clone(),
            connections: self.held[Held::Connections as usize],
            producers: self.held[Held::Producers as usize],
            consumers: self.held[Held::Consumers as usize],
            consumer_groups: self.held[Held::ConsumerGroups as usize],
            topics: self.topics,
            partitions: self.partitions,
            storage_bytes: self.storage,
            bytes_per_second: rate(0),
            messages_per_second: rate(1),
            requests_per_second: rate(2),
            connection_creation_rate: g.per_second(self.opened.used(now, g.buckets)),
        }
    }

    pub fn counters(&self) -> TenantCounters {
        TenantCounters {
            admitted_bytes: self.windows[0].total(),
            admitted_messages: self.windows[1].total(),
            admitted_requests: self.windows[2].total(),
            refused: self.refused,
            refused_not_active: self.refused_not_active,
        }
    }

    /// Percent of each limited quota in use (every quota type but retention).
    pub fn utilization(&self, now: Now, g: &Geometry) -> BTreeMap<String, f64> {
        let u = self.usage(now, g);
        QuotaType::ALL
            .into_iter()
            .filter(|q| *q != QuotaType::RetentionHours)
            .map(|q| {
                let used = u.get(q).expect("every quota but retention has a usage");
                let pct = match self.quotas.get(q) {
                    l if l < 0 => 0.0,
                    0 if used == 0 => 0.0,
                    0 => 100.0,
                    l => used as f64 * 100.0 / l as f64,
                };
                (q.as_str().to_owned(), pct)
            })
            .collect()
    }
}

/// Why an id, a name or a quota set is refused (the engine's message must
/// name this).
pub fn invalid_id(id: &str) -> Option<Error> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && id != "."
        && id != "..";
    (!ok).then(|| Error::InvalidTenantId(String::new()))
}

pub fn invalid_name(name: &str) -> Option<Error> {
    let ok = !name.is_empty() && name.chars().count() <= 256 && !name.chars().any(char::is_control);
    (!ok).then(|| Error::InvalidName(String::new()))
}

/// The first field (in `QuotaType::ALL` order) below -1, or a rate above
/// `MAX_RATE_QUOTA`; the error carries the field's name.
pub fn invalid_quotas(q: &Quotas) -> Option<Error> {
    QuotaType::ALL
        .into_iter()
        .find(|&t| {
            let v = q.get(t);
            v < -1 || (t.is_rate() && v > MAX_RATE_QUOTA)
        })
        .map(|t| Error::InvalidQuotas(t.field_name().to_owned()))
}

/// The whole manager: time, the registry and every tenant instance.
#[derive(Clone, Debug)]
pub struct Model {
    pub geometry: Geometry,
    /// Nanoseconds since the manager was built.
    pub nanos: u64,
    pub registry: BTreeMap<String, usize>,
    pub instances: Vec<Tenant>,
}

impl Model {
    pub fn new(geometry: Geometry) -> Model {
        Model {
            geometry,
            nanos: 0,
            registry: BTreeMap::new(),
            instances: Vec::new(),
        }
    }

    pub fn now(&self) -> Now {
        Now {
            tick: self.nanos / self.geometry.bucket_nanos,
            nanos: self.nanos,
        }
    }

    pub fn lookup(&self, id: &str) -> Result<usize, Error> {
        self.registry
            .get(id)
            .copied()
            .ok_or_else(|| Error::TenantNotFound(id.to_owned()))
    }

    /// `create_tenant` / `restore`: id, then name, then quotas, then the
    /// status, then whether the id is taken.
    pub fn insert(
        &mut self,
        id: &str,
        name: &str,
        quotas: Quotas,
        status: TenantStatus,
    ) -> Result<(), Error> {
        if let Some(e) = invalid_id(id)
            .or_else(|| invalid_name(name))
            .or_else(|| invalid_quotas(&quotas))
        {
            return Err(e);
        }
        if status == TenantStatus::Deleted {
            return Err(Error::InvalidConfig(String::new()));
        }
        if self.registry.contains_key(id) {
            return Err(Error::TenantExists(id.to_owned()));
        }
        self.instances.push(Tenant::new(id, name, quotas, status));
        self.registry
            .insert(id.to_owned(), self.instances.len() - 1);
        Ok(())
    }

    /// `update_tenant`: the name and quotas are checked before the lookup.
    pub fn update(
        &mut self,
        id: &str,
        name: Option<&str>,
        quotas: Option<Quotas>,
    ) -> Result<(), Error> {
        if let Some(e) = name
            .and_then(invalid_name)
            .or_else(|| quotas.as_ref().and_then(invalid_quotas))
        {
            return Err(e);
        }
        let i = self.lookup(id)?;
        let t = &mut self.instances[i];
        if let Some(n) = name {
            t.name = n.to_owned();
        }
        if let Some(q) = quotas {
            t.quotas = q;
        }
        Ok(())
    }

    pub fn delete(&mut self, id: &str) -> Result<(), Error> {
        let i = self.lookup(id)?;
        self.registry.remove(id);
        self.instances[i].status = TenantStatus::Deleted;
        Ok(())
    }

    /// Suspend or activate; a tenant already there stays (no-op).
    pub fn set_status(&mut self, id: &str, to: TenantStatus) -> Result<(), Error> {
        let i = self.lookup(id)?;
        self.instances[i].status = to;
        Ok(())
    }
}
