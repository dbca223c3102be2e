//! The seed's design, ported to Rust as faithfully as safe Rust allows: the
//! baseline every bench measures our engine against.
//!
//! The seed (StreamBus `pkg/tenancy`, Go) is three layers of locks:
//!
//! - `TenantStore`: an `RWMutex` around `map[TenantID]*Tenant`; every
//!   enforcement first checks that the tenant is active (read lock, lookup);
//! - `Manager.trackers`: a second `RWMutex` around `map[TenantID]*QuotaTracker`;
//!   every enforcement then fetches the tracker (read lock, lookup);
//! - `QuotaTracker`: the held counts under an `RWMutex`, and three `RateWindow`s
//!   (bytes, messages, requests), each a `Mutex` around 10 buckets of 100 ms
//!   stamped with `time.Now()`.
//!
//! `EnforceProduceQuota` is check-then-record: `CheckThroughput` takes each
//! limited window's lock to compute its rate (`Rate()`: lock, `time.Now()`, sum
//! the buckets younger than the window), then `RecordThroughput` takes the bytes
//! and messages windows' locks again to add (`Add()`: lock, `time.Now()`, rotate
//! if the bucket is older than 100 ms). Like the seed, the port checks and
//! records bytes and messages only: the requests window exists but produce
//! never touches it. Connections are check (read lock) then add (write lock).
//!
//! What changes in the port, and why:
//!
//! - Go reads `qt.quotas` through a shared pointer with no lock (a data race
//!   the Go race detector would flag); the port shares the quotas through an
//!   `Arc` of relaxed atomics, which compile to the same plain loads on x86-64.
//! - `time.Now()` becomes `Instant::now()` (both are a vDSO
//!   `clock_gettime(CLOCK_MONOTONIC)` on Linux); Go's zero `time.Time` becomes
//!   `None`.
//! - A tracker fetched under the read lock is an `Arc` clone (Go returns the
//!   pointer and lets the collector keep it alive).
//! - Maps are `std::collections::HashMap` with its default SipHash, keyed by an
//!   `Arc<str>` shared by the store, the tracker map and the tracker, as Go
//!   shares one string's bytes among them.
//! - Errors are returned by value (Go boxes `*QuotaError` into an interface).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use streambus_tenancy::Quotas;

/// Seed's `Quotas`, shared by the tenant and its tracker as Go shares the
/// `*Quotas` pointer.
#[derive(Debug)]
pub struct SeedQuotas {
    pub max_bytes_per_second: AtomicI64,
    pub max_messages_per_second: AtomicI64,
    pub max_storage_bytes: AtomicI64,
    pub max_topics: AtomicI64,
    pub max_partitions: AtomicI64,
    pub max_connections: AtomicI64,
    pub max_producers: AtomicI64,
    pub max_consumers: AtomicI64,
    pub max_consumer_groups: AtomicI64,
    pub max_requests_per_second: AtomicI64,
    pub max_retention_hours: AtomicI64,
}

impl From<Quotas> for SeedQuotas {
    fn from(q: Quotas) -> Self {
        SeedQuotas {
            max_bytes_per_second: AtomicI64::new(q.max_bytes_per_second),
            max_messages_per_second: AtomicI64::new(q.max_messages_per_second),
            max_storage_bytes: AtomicI64::new(q.max_storage_bytes),
            max_topics: AtomicI64::new(q.max_topics),
            max_partitions: AtomicI64::new(q.max_partitions),
            max_connections: AtomicI64::new(q.max_connections),
            max_producers: AtomicI64::new(q.max_producers),
            max_consumers: AtomicI64::new(q.max_consumers),
            max_consumer_groups: AtomicI64::new(q.max_consumer_groups),
            max_requests_per_second: AtomicI64::new(q.max_requests_per_second),
            max_retention_hours: AtomicI64::new(q.max_retention_hours),
        }
    }
}

/// Go's unsynchronised field read.
#[inline]
fn get(q: &AtomicI64) -> i64 {
    q.load(Ordering::Relaxed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedStatus {
    Active,
    Suspended,
    Deleted,
}

#[derive(Debug)]
pub struct SeedTenant {
    pub id: Arc<str>,
    pub name: String,
    pub description: String,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub quotas: Arc<SeedQuotas>,
    pub metadata: HashMap<String, String>,
    pub status: SeedStatus,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SeedQuotaError {
    pub tenant_id: Arc<str>,
    pub quota_type: &'static str,
    pub current: i64,
    pub limit: i64,
    pub message: &'static str,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SeedError {
    Quota(SeedQuotaError),
    /// Go's `fmt.Errorf` messages (not found, exists, not active).
    Other(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedUsage {
    pub tenant_id: Option<Arc<str>>,
    pub connections: i64,
    pub producers: i64,
    pub consumers: i64,
    pub topics: i64,
    pub partitions: i64,
    pub consumer_groups: i64,
    pub storage_bytes: i64,
    pub bytes_per_second: i64,
    pub messages_per_second: i64,
    pub requests_per_second: i64,
}

// ----- RateWindow ---------------------------------------------------------

/// Seed's `RateWindow`: a mutex around a ring of buckets stamped with the
/// time each was opened.
#[derive(Debug)]
pub struct RateWindow {
    window_size: Duration,
    bucket_size: Duration,
    inner: Mutex<WindowInner>,
}

#[derive(Debug)]
struct WindowInner {
    buckets: Vec<i64>,
    /// `None` is Go's zero `time.Time`: older than any window.
    bucket_times: Vec<Option<Instant>>,
    current_idx: usize,
}

/// `now.Sub(t)`, with the zero time infinitely old.
#[inline]
fn since(now: Instant, t: Option<Instant>) -> Duration {
    match t {
        Some(t) => now.saturating_duration_since(t),
        None => Duration::MAX,
    }
}

impl RateWindow {
    pub fn new(window_size: Duration, bucket_size: Duration) -> RateWindow {
        let num_buckets = ((window_size.as_nanos() / bucket_size.as_nanos()) as usize).max(1);
        RateWindow {
            window_size,
            bucket_size,
            inner: Mutex::new(WindowInner {
                buckets: vec![0; num_buckets],
                bucket_times: vec![None; num_buckets],
                current_idx: 0,
            }),
        }
    }

    /// Adds a value to the current bucket, rotating to the next one if the
    /// current bucket is older than a bucket.
    pub fn add(&self, value: i64) {
        let mut w = self.inner.lock().unwrap();
        let now = Instant::now();
        let cur = w.current_idx;
        if since(now, w.bucket_times[cur]) >= self.bucket_size {
            let next = (cur + 1) % w.buckets.len();
            w.current_idx = next;
            w.buckets[next] = 0;
            w.bucket_times[next] = Some(now);
        }
        let cur = w.current_idx;
        w.buckets[cur] += value;
    }

    /// Total in the window per second of window.
    pub fn rate(&self) -> f64 {
        let w = self.inner.lock().unwrap();
        let now = Instant::now();
        let mut total = 0i64;
        for (i, t) in w.bucket_times.iter().enumerate() {
            if since(now, *t) <= self.window_size {
                total += w.buckets[i];
            }
        }
        total as f64 / self.window_size.as_secs_f64()
    }
}

// ----- QuotaTracker -------------------------------------------------------

#[derive(Debug, Default)]
struct Counters {
    current_connections: i64,
    current_producers: i64,
    current_consumers: i64,
    current_topics: i64,
    current_partitions: i64,
    current_consumer_groups: i64,
    current_storage_bytes: i64,
}

/// Seed's `QuotaTracker`.
#[derive(Debug)]
pub struct SeedTracker {
    tenant_id: Arc<str>,
    quotas: Arc<SeedQuotas>,
    mu: RwLock<Counters>,
    // Go holds each window by pointer (`*RateWindow`).
    bytes_window: Box<RateWindow>,
    messages_window: Box<RateWindow>,
    requests_window: Box<RateWindow>,
}

fn window() -> Box<RateWindow> {
    Box::new(RateWindow::new(
        Duration::from_secs(1),
        Duration::from_millis(100),
    ))
}

impl SeedTracker {
    pub fn new(tenant_id: Arc<str>, quotas: Arc<SeedQuotas>) -> SeedTracker {
        SeedTracker {
            tenant_id,
            quotas,
            mu: RwLock::new(Counters::default()),
            bytes_window: window(),
            messages_window: window(),
            requests_window: window(),
        }
    }

    fn quota_error(
        &self,
        quota_type: &'static str,
        current: i64,
        limit: i64,
        message: &'static str,
    ) -> SeedError {
        SeedError::Quota(SeedQuotaError {
            tenant_id: Arc::clone(&self.tenant_id),
            quota_type,
            current,
            limit,
            message,
        })
    }

    /// `CheckThroughput`: would `bytes` and `messages` fit?
    pub fn check_throughput(&self, bytes: i64, messages: i64) -> Result<(), SeedError> {
        let max_bytes = get(&self.quotas.max_bytes_per_second);
        if max_bytes >= 0 {
            let current = self.bytes_window.rate() as i64;
            if current + bytes > max_bytes {
                return Err(self.quota_error(
                    "bytes_per_second",
                    current,
                    max_bytes,
                    "bytes per second quota exceeded",
                ));
            }
        }
        let max_messages = get(&self.quotas.max_messages_per_second);
        if max_messages >= 0 {
            let current = self.messages_window.rate() as i64;
            if current + messages > max_messages {
                return Err(self.quota_error(
                    "messages_per_second",
                    current,
                    max_messages,
                    "messages per second quota exceeded",
                ));
            }
        }
        Ok(())
    }

    /// `RecordThroughput`: adds to the bytes and messages windows.
    pub fn record_throughput(&self, bytes: i64, messages: i64) {
        self.bytes_window.add(bytes);
        self.messages_window.add(messages);
    }

    /// The seed's produce path on a tracker: check, then record.
    #[inline]
    pub fn enforce_produce(&self, bytes: i64, messages: i64) -> Result<(), SeedError> {
        self.check_throughput(bytes, messages)?;
        self.record_throughput(bytes, messages);
        Ok(())
    }

    pub fn check_connection(&self) -> Result<(), SeedError> {
        let c = self.mu.read().unwrap();
        let max = get(&self.quotas.max_connections);
        if max >= 0 && c.current_connections >= max {
            return Err(self.quota_error(
                "connections",
                c.current_connections,
                max,
                "max connections quota exceeded",
            ));
        }
        Ok(())
    }

    /// `AddConnection`: check under the read lock, then add under the write
    /// lock (so two racing adds can both pass the check, as in the seed).
    pub fn add_connection(&self) -> Result<(), SeedError> {
        self.check_connection()?;
        self.mu.write().unwrap().current_connections += 1;
        Ok(())
    }

    pub fn remove_connection(&self) {
        let mut c = self.mu.write().unwrap();
        if c.current_connections > 0 {
            c.current_connections -= 1;
        }
    }

    pub fn get_usage(&self) -> SeedUsage {
        let c = self.mu.read().unwrap();
        SeedUsage {
            tenant_id: Some(Arc::clone(&self.tenant_id)),
            connections: c.current_connections,
            producers: c.current_producers,
            consumers: c.current_consumers,
            topics: c.current_topics,
            partitions: c.current_partitions,
            consumer_groups: c.current_consumer_groups,
            storage_bytes: c.current_storage_bytes,
            bytes_per_second: self.bytes_window.rate() as i64,
            messages_per_second: self.messages_window.rate() as i64,
            requests_per_second: self.requests_window.rate() as i64,
        }
    }
}

// ----- TenantStore and Manager ---------------------------------------------

/// Seed's `TenantStore`.
#[derive(Debug, Default)]
pub struct TenantStore {
    tenants: RwLock<HashMap<Arc<str>, SeedTenant>>,
}

impl TenantStore {
    fn create_tenant(
        &self,
        id: Arc<str>,
        name: &str,
        quotas: Arc<SeedQuotas>,
    ) -> Result<(), SeedError> {
        let mut tenants = self.tenants.write().unwrap();
        if tenants.contains_key(&id) {
            return Err(SeedError::Other(format!("tenant {id} already exists")));
        }
        let now = SystemTime::now();
        tenants.insert(
            Arc::clone(&id),
            SeedTenant {
                id,
                name: name.to_owned(),
                description: String::new(),
                created_at: now,
                updated_at: now,
                quotas,
                metadata: HashMap::new(),
                status: SeedStatus::Active,
            },
        );
        Ok(())
    }

    /// `CheckTenantActive` without copying the tenant out.
    fn check_active(&self, id: &str) -> Result<(), SeedError> {
        let tenants = self.tenants.read().unwrap();
        match tenants.get(id) {
            None => Err(SeedError::Other(format!("tenant {id} not found"))),
            Some(t) if t.status != SeedStatus::Active => Err(SeedError::Other(format!(
                "tenant {id} is not active (status: {:?})",
                t.status
            ))),
            Some(_) => Ok(()),
        }
    }

    fn set_status(&self, id: &str, status: SeedStatus) -> Result<(), SeedError> {
        let mut tenants = self.tenants.write().unwrap();
        match tenants.get_mut(id) {
            None => Err(SeedError::Other(format!("tenant {id} not found"))),
            Some(t) => {
                t.status = status;
                t.updated_at = SystemTime::now();
                Ok(())
            }
        }
    }
}

/// Seed's `Manager`.
#[derive(Debug, Default)]
pub struct SeedManager {
    store: TenantStore,
    trackers: RwLock<HashMap<Arc<str>, Arc<SeedTracker>>>,
}

impl SeedManager {
    pub fn new() -> SeedManager {
        SeedManager::default()
    }

    pub fn create_tenant(&self, id: &str, name: &str, quotas: Quotas) -> Result<(), SeedError> {
        let id: Arc<str> = Arc::from(id);
        let quotas = Arc::new(SeedQuotas::from(quotas));
        self.store
            .create_tenant(Arc::clone(&id), name, Arc::clone(&quotas))?;
        let tracker = Arc::new(SeedTracker::new(Arc::clone(&id), quotas));
        self.trackers.write().unwrap().insert(id, tracker);
        Ok(())
    }

    pub fn suspend_tenant(&self, id: &str) -> Result<(), SeedError> {
        self.store.set_status(id, SeedStatus::Suspended)
    }

    pub fn get_tracker(&self, id: &str) -> Result<Arc<SeedTracker>, SeedError> {
        let trackers = self.trackers.read().unwrap();
        match trackers.get(id) {
            Some(t) => Ok(Arc::clone(t)),
            None => Err(SeedError::Other(format!(
                "no tracker found for tenant {id}"
            ))),
        }
    }

    /// `EnforceProduceQuota`: active check, tracker lookup, check, record.
    pub fn enforce_produce_quota(
        &self,
        id: &str,
        bytes: i64,
        messages: i64,
    ) -> Result<(), SeedError> {
        self.store.check_active(id)?;
        let tracker = self.get_tracker(id)?;
        tracker.check_throughput(bytes, messages)?;
        tracker.record_throughput(bytes, messages);
        Ok(())
    }

    /// `EnforceConsumeQuota` is the same code in the seed.
    pub fn enforce_consume_quota(
        &self,
        id: &str,
        bytes: i64,
        messages: i64,
    ) -> Result<(), SeedError> {
        self.enforce_produce_quota(id, bytes, messages)
    }

    pub fn enforce_connection_quota(&self, id: &str) -> Result<(), SeedError> {
        self.store.check_active(id)?;
        let tracker = self.get_tracker(id)?;
        tracker.add_connection()
    }

    pub fn release_connection(&self, id: &str) {
        if let Ok(tracker) = self.get_tracker(id) {
            tracker.remove_connection();
        }
    }

    pub fn get_usage(&self, id: &str) -> Result<SeedUsage, SeedError> {
        Ok(self.get_tracker(id)?.get_usage())
    }

    /// `GetAllUsage`: the tracker map's read lock held while every tracker
    /// reports.
    pub fn get_all_usage(&self) -> HashMap<Arc<str>, SeedUsage> {
        let trackers = self.trackers.read().unwrap();
        let mut usage = HashMap::new();
        for (id, tracker) in trackers.iter() {
            usage.insert(Arc::clone(id), tracker.get_usage());
        }
        usage
    }

    pub fn len(&self) -> usize {
        self.trackers.read().unwrap().len()
    }
}
