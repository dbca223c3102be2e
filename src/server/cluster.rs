//! Cluster-wide quotas (feature `cluster`): a tenant served by several
//! brokers gets its quota once across all of them, and `enforce_*` stays
//! local.
//!
//! A [`ClusterSync`] runs beside a broker's [`Manager`] on its own thread.
//! Once per bucket (100 ms by default) it reports, for every tenant that had
//! traffic on this broker, what it holds and wants, and receives the
//! *allowance* it may hold: the most its local window may contain. The
//! engine enforces the allowance as a cap on the tenant's rate quotas (see
//! the crate's `cluster_hooks` module): no network call, lock or allocation
//! on the produce path.
//!
//! Held counts (connections, producers, consumers, consumer groups, topics,
//! partitions) hold cluster-wide when taken through the sync
//! ([`ClusterSync::acquire`], [`ClusterSync::add_topic`]), within leases of
//! units Redis grants each broker; storage is reported and summed
//! ([`TenantView::cluster_storage`]). ARCHITECTURE.md, "Cluster-wide
//! quotas", has both protocols.
//!
//! # The protocol (one script call per tenant and round, pipelined)
//!
//! Redis keeps, per tenant (key `streambus-tenancy:cq:{<id>}`), what each
//! broker following the tenant last reported: per rate window its *held*
//! amount, its *demand* and its window's content, with the time it was
//! heard from and the sequence number of its report. A broker's report
//! carries, per rate: its window's content `L`, the allowance it has in
//! force `A`, and its demand `d`: unbounded if it refused a call of that
//! rate since its last round, else what it admitted over the last round as
//! a window's worth, plus a tenth and one bucket of a fair share to grow.
//! The script, atomically:
//!
//! 1. ignores the report if its sequence number is not above the last one
//!    from that broker (a delayed or retried report never counts twice);
//! 2. reads the others heard from within [`BROKER_TTL`]: their held amounts
//!    `H_j` and demands `d_j`;
//! 3. computes the max-min fair split of the window's quota `Q·W` over the
//!    `k` brokers following the tenant (brokers that want less than an even
//!    share of what is left get what they want, the others split the rest;
//!    what nobody wants is split evenly), and this broker's new allowance
//!    `a = min(its fair share, Q·W − Σ H_j)`, at least 0;
//! 4. records this broker as holding `max(L, A, a)`: whatever its window
//!    may contain until it reports again.
//!
//! **Invariant.** Every broker's window holds at most what Redis records it
//! as holding (its content only grows up to the allowance in force, and a
//! lowered allowance stays recorded as held until the broker has applied it
//! and its window has drained below it), and the script never grants past
//! `Q·W − Σ H_j`. So the brokers' windows never hold more than the window's
//! quota together, apart from the two bounded cases below.
//! `tests/cluster_quotas.rs` measures it with three broker processes.
//!
//! The report is absolute (content and allowance, not deltas), so a report
//! lost, retried or applied late cannot count anything twice, and a broker
//! that comes back from an outage has nothing to replay.
//!
//! # Tenants not followed
//!
//! A broker follows a tenant from its first call (the engine's activity
//! feed) until it has had no traffic, nothing in its window and no refusal
//! for a whole window. It then lets it go in two rounds: it watches the
//! tenant again (its next call feeds it again) and reads its totals, and a
//! round later tells Redis it left if neither the watch bit nor the totals
//! moved (loom model `feed_rewatch_races_a_call_loses_nothing`). A tenant it does not
//! follow is capped at its *idle share*: a window's quota over the live
//! brokers times the buckets. That share is not recorded in Redis, so the
//! first round of a tenant on a broker can admit up to one bucket of a fair
//! share more than the quota (with 3 brokers and 10 buckets, 1/30 of a
//! window's quota per broker that starts serving the tenant).
//!
//! # Redis unreachable
//!
//! A round that fails (an error, or no answer within [`ROUND_TIMEOUT`])
//! switches the broker to *fallback shares*: every tenant is capped at its
//! window's quota over the live brokers last seen, and the broker keeps
//! counting. The brokers' windows then sum to at most
//! `max(content at the outage, Q·W / N)` each: **the worst overshoot is
//! `(N−1)/N` of a window's quota, in the first window of the outage**, and
//! none after it while the live count holds. When Redis answers again, the
//! first round caps each allowance at the fallback share (the others may
//! not have reported yet), and from the second the protocol above holds.
//! Reports are absolute (content and allowance, not deltas), so nothing is
//! counted twice on the way back.
//!
//! # Brokers
//!
//! Each broker writes a heartbeat to `{streambus-tenancy}:brokers` every
//! round; the brokers heard from within [`BROKER_TTL`] are the live count
//! `N`. A broker that stops (or is stopped) stops being counted, and its
//! held amounts stop counting, after the TTL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use redis::Script;

use super::redis_conn::{Connection, RedisUrl};
use super::store::StoreError;
use crate::cluster_hooks::{fallback_share, ClusterHooks};
use crate::tracker::{Held, QuotaTracker, RateSnapshot};
use crate::{Error, Manager, Permit, QuotaType};

/// How long a broker is counted live, and its held amounts counted, after
/// its last report.
pub const BROKER_TTL: Duration = Duration::from_secs(3);
/// A round that has not finished after this long has failed: the broker
/// switches to fallback shares.
pub const ROUND_TIMEOUT: Duration = Duration::from_millis(500);
/// Script calls in flight at once in a round.
const IN_FLIGHT: usize = 256;
/// The heartbeat hash.
const BROKERS: &str = "{streambus-tenancy}:brokers";

/// The per-tenant report. KEYS: the tenant's key. ARGV: node, seq, ttl in
/// ms, buckets, live brokers, leave (1 or 0), then per rate (bytes,
/// messages, requests) the window quota (-1: unlimited), demand (-1:
/// unbounded), content and allowance in force; then per held count
/// (connections, producers, consumers, consumer groups, topics,
/// partitions) the lease units given back; then the tenant's storage on
/// this broker, kept in the storage hash (KEYS[2]), which does not expire:
/// the cluster-wide storage is the sum of every broker's last report. Returns the three allowances (-1:
/// unlimited), the cluster-wide content per rate, the brokers following
/// the tenant and the cluster-wide storage; `{-2}` for a report that came
/// too late.
const REPORT_SCRIPT: &str = r"
local key, node = KEYS[1], ARGV[1]
local seq, ttl, n, live = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if live < 1 then live = 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', key, 's|' .. node) or '-1')
if seq <= last then
  return {-2}
end
local fields = {}
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do fields[all[i]] = all[i + 1] end
local others = {}
for f, v in pairs(fields) do
  if string.sub(f, 1, 2) == 'h|' then
    local other = string.sub(f, 3)
    local age = now - tonumber(v)
    if other ~= node then
      if age <= ttl then
        others[#others + 1] = other
      elseif age > 10 * ttl then
        redis.call('HDEL', key, 'h|' .. other, 's|' .. other,
          'c1|' .. other, 'c2|' .. other, 'c3|' .. other,
          'w1|' .. other, 'w2|' .. other, 'w3|' .. other,
          'u1|' .. other, 'u2|' .. other, 'u3|' .. other,
          'l1|' .. other, 'l2|' .. other, 'l3|' .. other, 'l4|' .. other,
          'l5|' .. other, 'l6|' .. other)
      end
    end
  end
end
redis.call('HSET', KEYS[2], node, ARGV[25])
local storage = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do storage = storage + tonumber(v) end
for kind = 1, 6 do
  local release = tonumber(ARGV[18 + kind])
  if release > 0 then
    local left = redis.call('HINCRBY', key, 'l' .. kind .. '|' .. node, -release)
    if left <= 0 then redis.call('HDEL', key, 'l' .. kind .. '|' .. node) end
  end
end
if ARGV[6] == '1' then
  redis.call('HDEL', key, 'h|' .. node,
    'c1|' .. node, 'c2|' .. node, 'c3|' .. node,
    'w1|' .. node, 'w2|' .. node, 'w3|' .. node,
    'u1|' .. node, 'u2|' .. node, 'u3|' .. node)
  redis.call('HSET', key, 's|' .. node, seq)
  redis.call('PEXPIRE', key, 20 * ttl)
  return {-1, -1, -1, 0, 0, 0, #others, storage}
end
local k = #others + 1
local out = {}
local used = {}
for r = 1, 3 do
  local base = 6 + (r - 1) * 4
  local qw = tonumber(ARGV[base + 1])
  local demand = tonumber(ARGV[base + 2])
  local content = tonumber(ARGV[base + 3])
  local applied = tonumber(ARGV[base + 4])
  local held, u = 0, content
  local finite = {}
  local unbounded = 0
  if demand < 0 then unbounded = 1 else finite[#finite + 1] = demand end
  for _, o in ipairs(others) do
    held = held + tonumber(fields['c' .. r .. '|' .. o] or '0')
    u = u + tonumber(fields['u' .. r .. '|' .. o] or '0')
    local d = tonumber(fields['w' .. r .. '|' .. o] or '0')
    if d < 0 then unbounded = unbounded + 1 else finite[#finite + 1] = d end
  end
  used[r] = u
  local a = -1
  local h = content
  if qw >= 0 then
    -- Max-min fair shares of the window's quota: brokers that want less
    -- than an equal share of what is left get what they want, the rest
    -- split it; what nobody wants is split equally.
    table.sort(finite)
    local rem, cnt = qw, k
    local level = nil
    for _, d in ipairs(finite) do
      if d * cnt <= rem then
        rem = rem - d
        cnt = cnt - 1
      else
        level = rem / cnt
        break
      end
    end
    if level == nil and unbounded > 0 then level = rem / unbounded end
    local target
    if level == nil then
      target = demand + rem / k
    elseif demand < 0 or demand > level then
      target = level
    else
      target = demand
    end
    a = math.floor(math.min(target, qw - held))
    if a < 0 then a = 0 end
    h = math.max(content, applied, a)
  end
  out[r] = a
  redis.call('HSET', key, 'c' .. r .. '|' .. node, h, 'w' .. r .. '|' .. node, demand,
    'u' .. r .. '|' .. node, content)
end
redis.call('HSET', key, 's|' .. node, seq, 'h|' .. node, now)
redis.call('PEXPIRE', key, 20 * ttl)
return {out[1], out[2], out[3], used[1], used[2], used[3], k, storage}
";

/// A lease request. KEYS: the tenant's key. ARGV: node, count (1 to 6:
/// connections, producers, consumers, consumer groups, topics,
/// partitions), units wanted, the
/// quota, ttl in ms. Grants what fits under the quota beside the leases of
/// the brokers heard from within the TTL (this one's included), and marks
/// this broker heard from. Returns the units granted and the cluster-wide
/// leases after the grant.
const LEASE_SCRIPT: &str = r"
local key, node, kind = KEYS[1], ARGV[1], ARGV[2]
local want, quota, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = {}
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do fields[all[i]] = all[i + 1] end
local total = 0
for f, v in pairs(fields) do
  if string.sub(f, 1, 2) == 'h|' then
    local other = string.sub(f, 3)
    if other ~= node and now - tonumber(v) <= ttl then
      total = total + tonumber(fields['l' .. kind .. '|' .. other] or '0')
    end
  end
end
local mine = tonumber(fields['l' .. kind .. '|' .. node] or '0')
local grant = math.min(want, quota - total - mine)
if grant < 0 then grant = 0 end
if grant > 0 then
  redis.call('HSET', key, 'l' .. kind .. '|' .. node, mine + grant)
end
redis.call('HSET', key, 'h|' .. node, now)
redis.call('PEXPIRE', key, 20 * ttl)
return {grant, total + mine + grant}
";

/// The heartbeat. KEYS: the brokers hash. ARGV: node, ttl in ms. Returns
/// the brokers heard from within the TTL, this one included.
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], now)
local all = redis.call('HGETALL', KEYS[1])
local live = 0
for i = 1, #all, 2 do
  local age = now - tonumber(all[i + 1])
  if age <= ttl then
    live = live + 1
  elseif age > 100 * ttl then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
";

/// How a [`ClusterSync`] runs.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This broker's name in Redis and in logs; unique among the brokers.
    pub node: String,
    /// Time between rounds (default: the manager's bucket).
    pub interval: Option<Duration>,
}

impl ClusterOptions {
    /// Options for a broker named `node`.
    pub fn new(node: impl Into<String>) -> ClusterOptions {
        ClusterOptions {
            node: node.into(),
            interval: None,
        }
    }
}

/// Latency histogram bounds, in seconds.
const LATENCY_BOUNDS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// What a [`ClusterSync`] shows: Redis reachable, live brokers, rounds and
/// failures, sync latency, and per tenant followed its allowance and the
/// cluster-wide usage. Cloning shares it.
#[derive(Clone, Debug)]
pub struct ClusterStatus(Arc<StatusInner>);

#[derive(Debug)]
struct StatusInner {
    redis_up: AtomicBool,
    live: AtomicU64,
    rounds: AtomicU64,
    failures: AtomicU64,
    /// Round durations: counts per bound of [`LATENCY_BOUNDS`] and above.
    latency: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    latency_sum_ns: AtomicU64,
    tenants: Mutex<HashMap<Arc<str>, TenantView>>,
}

/// One followed tenant as the last round left it, per rate (bytes,
/// messages, requests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantView {
    /// The local allowance in force, as a per-second rate (`None`: the rate
    /// is unlimited).
    pub allowance: [Option<u64>; 3],
    /// The cluster-wide content of the window, as a per-second rate: this
    /// broker's and every other broker's last report.
    pub cluster_usage: [u64; 3],
    /// Brokers following the tenant.
    pub brokers: u64,
    /// The tenant's storage cluster-wide: the sum of every broker's last
    /// report (kept after a broker stops following the tenant).
    pub cluster_storage: u64,
}

impl ClusterStatus {
    fn new() -> ClusterStatus {
        ClusterStatus(Arc::new(StatusInner {
            redis_up: AtomicBool::new(false),
            live: AtomicU64::new(1),
            rounds: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency: Default::default(),
            latency_sum_ns: AtomicU64::new(0),
            tenants: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether the last round reached Redis.
    pub fn redis_up(&self) -> bool {
        self.0.redis_up.load(Ordering::Relaxed)
    }

    /// Brokers heard from within [`BROKER_TTL`] (the last seen, while Redis
    /// does not answer).
    pub fn live_brokers(&self) -> u64 {
        self.0.live.load(Ordering::Relaxed)
    }

    /// Rounds finished, successful or not.
    pub fn rounds(&self) -> u64 {
        self.0.rounds.load(Ordering::Relaxed)
    }

    /// Rounds that failed (Redis unreachable, an error, or too slow).
    pub fn failures(&self) -> u64 {
        self.0.failures.load(Ordering::Relaxed)
    }

    /// The round-duration histogram: cumulative counts per upper bound (in
    /// seconds; the last is `+Inf`), the sum in seconds and the count.
    pub fn latency(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(LATENCY_BOUNDS.len() + 1);
        for (i, c) in self.0.latency.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let bound = LATENCY_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, cumulative));
        }
        let sum = self.0.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, sum, cumulative)
    }

    /// The followed tenants, by id.
    pub fn tenants(&self) -> Vec<(String, TenantView)> {
        let map = self.0.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// One followed tenant.
    pub fn tenant(&self, id: &str) -> Option<TenantView> {
        let map = self.0.tenants.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).copied()
    }

    fn observe(&self, took: Duration, ok: bool) {
        let s = took.as_secs_f64();
        let i = LATENCY_BOUNDS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.0.latency[i].fetch_add(1, Ordering::Relaxed);
        self.0.latency_sum_ns.fetch_add(
            took.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        self.0.rounds.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.0.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Cluster-wide rate quotas for one broker's [`Manager`]: see the module
/// documentation for the protocol and its bounds.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use streambus_tenancy::server::{ClusterOptions, ClusterSync, Follower};
/// use streambus_tenancy::Manager;
///
/// let manager = Arc::new(Manager::new());
/// let url = "redis://127.0.0.1:6379";
/// // The tenants, from the Redis store.
/// let follower = Follower::start(Arc::clone(&manager), url, None)?;
/// // Their quotas, cluster-wide.
/// let sync = ClusterSync::start(Arc::clone(&manager), url, ClusterOptions::new("broker-1"))?;
/// // The produce loop calls the engine as before: no network call.
/// let _ = manager.enforce_produce_quota("acme", 4096, 1);
/// sync.stop();
/// follower.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ClusterSync {
    status: ClusterStatus,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    lease_thread: Option<JoinHandle<()>>,
    leases: Arc<Leases>,
    requests: tokio::sync::mpsc::UnboundedSender<LeaseRequest>,
    manager: Arc<Manager>,
}

/// The held counts a lease covers, in the order of the `l1`..`l6` fields.
const LEASED: [Held; 6] = Held::ALL;
/// Indices of topics and partitions in [`LEASED`].
const TOPICS: usize = Held::Topics as usize;
const PARTITIONS: usize = Held::Partitions as usize;

/// How long an acquire waits for a lease from Redis before it falls back
/// to the broker's share.
pub const LEASE_TIMEOUT: Duration = Duration::from_millis(500);

/// This broker's leases: per tenant, the units of each held count it may
/// hold (what Redis records for it, or less while a give-back is on its
/// way). A tenant's entry has its own lock, taken by acquires that need
/// more and by the round that gives the surplus back.
#[derive(Debug, Default)]
struct Leases(Mutex<HashMap<Arc<str>, LeaseEntry>>);

/// One tenant's lease units under its own lock.
type LeaseEntry = Arc<Mutex<Lease>>;

/// What a broker may hold of a tenant's held counts.
#[derive(Debug, Default)]
struct Lease {
    /// Units per count: connections, producers, consumers, consumer groups,
    /// topics, partitions.
    units: [u64; 6],
    /// Whether an acquire came since the last round: a tenant in use keeps
    /// a batch in reserve, an unused one gives everything unheld back.
    touched: bool,
}

impl Leases {
    fn entry(&self, id: &Arc<str>) -> LeaseEntry {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(Arc::clone(id)).or_default())
    }

    fn get(&self, id: &str) -> Option<LeaseEntry> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).cloned()
    }
}

/// An acquire's request for more lease units, answered by the sync thread.
#[derive(Debug)]
struct LeaseRequest {
    id: Arc<str>,
    kind: usize,
    want: u64,
    quota: u64,
    reply: std::sync::mpsc::SyncSender<Result<(u64, u64), String>>,
}

/// Units asked for at once: a quarter of an even share, at least one.
fn lease_batch(quota: u64, live: u64) -> u64 {
    (quota / (4 * live.max(1))).max(1)
}

impl ClusterSync {
    /// Attaches to `manager` (every tenant is capped at its idle share from
    /// now on) and starts the rounds on a new thread. Redis need not be
    /// reachable yet: until it is, tenants are held to fallback shares.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL is malformed, the node name is empty or
    /// longer than 128 bytes, or the interval is under 10 ms.
    pub fn start(
        manager: Arc<Manager>,
        url: &str,
        options: ClusterOptions,
    ) -> Result<ClusterSync, StoreError> {
        let url = RedisUrl::parse(url)?;
        if options.node.is_empty() || options.node.len() > 128 {
            return Err(StoreError::new(format!(
                "the cluster node name must be 1 to 128 bytes, got {:?}",
                options.node
            )));
        }
        let bucket = manager.window() / manager.buckets() as u32;
        let interval = options.interval.unwrap_or(bucket);
        if interval < Duration::from_millis(10) {
            return Err(StoreError::new(format!(
                "the cluster sync interval must be at least 10ms, got {interval:?}"
            )));
        }
        manager.attach_cluster();
        let status = ClusterStatus::new();
        let stop = Arc::new(AtomicBool::new(false));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::new(format!("cannot start a runtime for Redis: {e}")))?;
        let leases = Arc::new(Leases::default());
        let (requests, requests_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut serve = LeaseServer {
            url: url.clone(),
            node: options.node.clone(),
            stop: Arc::clone(&stop),
            script: Script::new(LEASE_SCRIPT),
            requests: requests_rx,
        };
        let mut run = Run {
            manager: Arc::clone(&manager),
            leases: Arc::clone(&leases),
            url,
            node: options.node,
            interval,
            status: status.clone(),
            stop: Arc::clone(&stop),
            followed: HashMap::new(),
            seq: initial_seq(),
            reachable: false,
            rejoining: false,
            report: Script::new(REPORT_SCRIPT),
            heartbeat: Script::new(HEARTBEAT_SCRIPT),
        };
        // Lease requests get a thread of their own, so that an acquire
        // never waits behind a round.
        let lease_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::new(format!("cannot start a runtime for Redis: {e}")))?;
        let lease_thread = std::thread::Builder::new()
            .name("tenancy-leases".into())
            .spawn(move || lease_rt.block_on(serve.serve()))
            .map_err(|e| StoreError::new(format!("cannot start the lease thread: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("tenancy-cluster".into())
            .spawn(move || rt.block_on(run.run()))
            .map_err(|e| StoreError::new(format!("cannot start the cluster thread: {e}")))?;
        Ok(ClusterSync {
            status,
            stop,
            thread: Some(thread),
            lease_thread: Some(lease_thread),
            leases,
            requests,
            manager,
        })
    }

    /// Takes one connection, producer, consumer or consumer group
    /// (`kind`) of tenant `id` within its quota cluster-wide, released
    /// when the permit drops.
    ///
    /// The broker takes it locally within the lease of units it holds;
    /// when the lease is used up it asks Redis for more (one script call,
    /// a round trip to Redis: about 0.1 to 0.3 ms on loopback; see
    /// BENCHMARKS.md) and is refused if the other brokers' leases leave no
    /// room. Unused lease units are given back within a round. If Redis
    /// does not answer within [`LEASE_TIMEOUT`], the broker may hold up to
    /// its fallback share (the quota over the live brokers last seen).
    /// Leases of a broker that stops reporting stop counting after
    /// [`BROKER_TTL`]. An unlimited quota needs no lease.
    ///
    /// Acquire through the sync for the count to hold cluster-wide: the
    /// `Manager`'s own `acquire_*` and `enforce_*_quota` for counts check
    /// the tenant's quota on this broker only.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] (its `current` is what this broker holds,
    /// its `limit` the tenant's quota), [`Error::TenantNotActive`],
    /// [`Error::TenantNotFound`]; [`Error::InvalidConfig`] if `kind` is not
    /// one of the four (topics and partitions: [`ClusterSync::add_topic`]).
    pub fn acquire(&self, id: &str, kind: QuotaType) -> Result<Permit, Error> {
        let Some(k) = LEASED[..TOPICS].iter().position(|h| h.quota_type() == kind) else {
            return Err(Error::InvalidConfig(format!(
                "ClusterSync::acquire takes connections, producers, consumers or \
                 consumer_groups, not {kind} (topics: ClusterSync::add_topic)"
            )));
        };
        let held = LEASED[k];
        let tracker = self.manager.get_tracker(id)?;
        if tracker.quotas().get(kind) < 0 {
            tracker.acquire_within(held, None)?;
            return Ok(Permit::new(tracker, held));
        }
        let entry = self.leases.entry(tracker.id_arc());
        let mut lease = entry.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_lease(&tracker, &mut lease, k, 1);
        tracker.acquire_within(held, Some(lease.units[k]))?;
        Ok(Permit::new(tracker, held))
    }

    /// Takes one topic and `partitions` partitions of tenant `id` within
    /// their quotas cluster-wide, as [`ClusterSync::acquire`] does for the
    /// other counts (two leases: topics and partitions); give them back
    /// with [`ClusterSync::remove_topic`].
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`] for `topics` or `partitions`,
    /// [`Error::TenantNotActive`], [`Error::TenantNotFound`].
    pub fn add_topic(&self, id: &str, partitions: u32) -> Result<(), Error> {
        let tracker = self.manager.get_tracker(id)?;
        let q = tracker.quotas();
        let entry = self.leases.entry(tracker.id_arc());
        let mut lease = entry.lock().unwrap_or_else(|p| p.into_inner());
        let mut leases = (u64::MAX, u64::MAX);
        if q.max_topics >= 0 {
            self.ensure_lease(&tracker, &mut lease, TOPICS, 1);
            leases.0 = lease.units[TOPICS];
        }
        if q.max_partitions >= 0 {
            self.ensure_lease(&tracker, &mut lease, PARTITIONS, u64::from(partitions));
            leases.1 = lease.units[PARTITIONS];
        }
        tracker.add_topic_within(partitions, Some(leases))
    }

    /// Gives back one topic and `partitions` partitions of tenant `id` (the
    /// lease units return to Redis within a round or two).
    pub fn remove_topic(&self, id: &str, partitions: u32) {
        if let Ok(t) = self.manager.get_tracker(id) {
            t.remove_topic(partitions);
        }
    }

    /// Makes room for `needed` more of count `k` in `lease`, asking Redis
    /// if the lease is used up; if Redis does not answer, the lease may
    /// grow to the fallback share.
    fn ensure_lease(&self, tracker: &Arc<QuotaTracker>, lease: &mut Lease, k: usize, needed: u64) {
        lease.touched = true;
        let quota = tracker.quotas().get(LEASED[k].quota_type());
        if quota < 0 || tracker.held(LEASED[k]).saturating_add(needed) <= lease.units[k] {
            return;
        }
        let quota = quota as u64;
        let live = self.status.live_brokers();
        let short = tracker.held(LEASED[k]).saturating_add(needed) - lease.units[k];
        let want = lease_batch(quota, live).max(short);
        match self.request(tracker.id_arc(), k, want, quota) {
            // A grant short of the need leaves the lease used up: the engine
            // refuses, and counts the refusal where it counts every other.
            Ok((grant, _leased)) => lease.units[k] += grant,
            Err(e) => {
                let share = fallback_share(quota, live);
                tracing::debug!(
                    tenant = tracker.id(),
                    "lease from Redis failed ({e}); fallback share {share}"
                );
                lease.units[k] = lease.units[k].max(share);
            }
        }
    }

    /// Asks the lease thread for lease units and waits for the answer.
    fn request(
        &self,
        id: &Arc<str>,
        kind: usize,
        want: u64,
        quota: u64,
    ) -> Result<(u64, u64), String> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.requests
            .send(LeaseRequest {
                id: Arc::clone(id),
                kind,
                want,
                quota,
                reply,
            })
            .map_err(|_| "the cluster sync has stopped".to_string())?;
        answer
            .recv_timeout(LEASE_TIMEOUT + Duration::from_millis(100))
            .map_err(|_| "no answer from the cluster sync".to_string())?
    }

    /// The lease units this broker holds for tenant `id` (connections,
    /// producers, consumers, consumer groups, topics, partitions).
    pub fn leases(&self, id: &str) -> [u64; 6] {
        self.leases
            .get(id)
            .map(|e| e.lock().unwrap_or_else(|p| p.into_inner()).units)
            .unwrap_or_default()
    }

    /// Its status, for `/metrics` and tests; stays current while it runs.
    pub fn status(&self) -> ClusterStatus {
        self.status.clone()
    }

    /// Stops the rounds (within one interval, or [`ROUND_TIMEOUT`] if a
    /// round is under way). The tenants keep the caps they had.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in [self.thread.take(), self.lease_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
    }
}

impl Drop for ClusterSync {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sequence numbers start from the wall clock in microseconds, so a broker
/// restarted under the same name still reports above its last number.
fn initial_seq() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A tenant this broker follows.
#[derive(Debug)]
struct Followed {
    tracker: Arc<QuotaTracker>,
    /// Totals and refusals as of the last round (the demand's base).
    last: RateSnapshot,
    /// The allowance in force, per rate (window units; `None`: uncapped).
    applied: [Option<u64>; 3],
    /// Rounds in a row with no traffic, nothing in the window and no refusal.
    idle_rounds: u64,
    /// Set when the sync watched the tenant again to let it go: its totals
    /// then.
    leaving: Option<[u64; 3]>,
    /// Lease units given back locally and not yet confirmed by Redis: the
    /// report that carried them (its sequence number) until its answer
    /// comes. A report whose answer was lost is sent again with its own
    /// sequence number, so Redis applies it once whether or not it ran the
    /// first time (a report it did run makes the copy stale).
    unacked: Option<(u64, [u64; 6])>,
    /// Lease units given back locally while an unacknowledged report is
    /// outstanding, to send after it.
    pending: [u64; 6],
}

/// Answers the acquires' lease requests on a thread of its own, on its own
/// connection.
struct LeaseServer {
    url: RedisUrl,
    node: String,
    stop: Arc<AtomicBool>,
    script: Script,
    requests: tokio::sync::mpsc::UnboundedReceiver<LeaseRequest>,
}

impl LeaseServer {
    async fn serve(&mut self) {
        let mut conn: Option<Connection> = None;
        loop {
            let req = tokio::select! {
                r = self.requests.recv() => r,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
            };
            let Some(req) = req else { return };
            let answer = tokio::time::timeout(LEASE_TIMEOUT, self.lease(&mut conn, &req))
                .await
                .unwrap_or_else(|_| Err("no answer within the lease timeout".into()));
            if answer.is_err() {
                conn = None;
            }
            let _ = req.reply.try_send(answer);
        }
    }

    async fn lease(
        &self,
        conn: &mut Option<Connection>,
        req: &LeaseRequest,
    ) -> Result<(u64, u64), String> {
        if conn.is_none() {
            *conn = Some(
                self.url
                    .connect_quietly(LEASE_TIMEOUT)
                    .await
                    .map_err(|e| super::redis_conn::summary(&e))?,
            );
        }
        let c = conn.as_mut().expect("connected above");
        let answer: Vec<u64> = self
            .script
            .key(tenant_key(&req.id))
            .arg(&self.node)
            .arg(req.kind + 1)
            .arg(req.want)
            .arg(req.quota)
            .arg(BROKER_TTL.as_millis() as u64)
            .invoke_async(c)
            .await
            .map_err(|e| super::redis_conn::summary(&e))?;
        match answer[..] {
            [grant, total, ..] => Ok((grant, total)),
            _ => Err("the lease script answered too little".into()),
        }
    }
}

struct Run {
    manager: Arc<Manager>,
    leases: Arc<Leases>,
    url: RedisUrl,
    node: String,
    interval: Duration,
    status: ClusterStatus,
    stop: Arc<AtomicBool>,
    followed: HashMap<Arc<str>, Followed>,
    seq: u64,
    reachable: bool,
    /// The first successful round after an outage.
    rejoining: bool,
    report: Script,
    heartbeat: Script,
}

/// One tenant's report, as sent.
struct Report {
    id: Arc<str>,
    quota_window: [i64; 3],
    demand: [i64; 3],
    content: [u64; 3],
    applied: [i64; 3],
    /// Lease units given back, per held count.
    release: [u64; 6],
    /// The report's sequence number (an earlier one, to repeat a report
    /// whose answer was lost).
    seq: u64,
    /// The tenant's storage on this broker.
    storage: u64,
    leave: bool,
    snapshot: RateSnapshot,
}

impl Run {
    fn hooks(&self) -> &ClusterHooks {
        self.manager
            .cluster_hooks()
            .expect("attached in ClusterSync::start")
    }

    async fn run(&mut self) {
        let mut conn: Option<Connection> = None;
        let mut next = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            next += self.interval;
            let started = Instant::now();
            let ok = match &conn {
                Some(c) => {
                    let mut c = c.clone();
                    tokio::time::timeout(ROUND_TIMEOUT, self.round(&mut c))
                        .await
                        .unwrap_or_else(|_| Err("no answer within the round timeout".into()))
                }
                None => match tokio::time::timeout(
                    ROUND_TIMEOUT,
                    self.url.connect_quietly(ROUND_TIMEOUT),
                )
                .await
                {
                    Ok(Ok(c)) => {
                        conn = Some(c.clone());
                        let mut c = c;
                        tokio::time::timeout(ROUND_TIMEOUT, self.round(&mut c))
                            .await
                            .unwrap_or_else(|_| Err("no answer within the round timeout".into()))
                    }
                    Ok(Err(e)) => Err(super::redis_conn::summary(&e)),
                    Err(_) => Err("no connection within the round timeout".into()),
                },
            };
            self.status.observe(started.elapsed(), ok.is_ok());
            match ok {
                Ok(()) => {
                    if !self.reachable {
                        tracing::info!(node = %self.node, "cluster sync: Redis answers; allowances from Redis");
                        self.reachable = true;
                        self.status.0.redis_up.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    if self.reachable || self.status.rounds() == 1 {
                        tracing::warn!(
                            node = %self.node,
                            "cluster sync: {e}; every tenant held to its fallback share (quota / {} brokers)",
                            self.status.live_brokers()
                        );
                    }
                    self.reachable = false;
                    self.rejoining = true;
                    self.status.0.redis_up.store(false, Ordering::Relaxed);
                    self.fall_back();
                }
            }
            let now = Instant::now();
            if next < now {
                next = now;
            }
            // Sleep in short steps so that `stop` is seen promptly.
            while Instant::now() < next && !self.stop.load(Ordering::SeqCst) {
                let left = next.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(Duration::from_millis(50))).await;
            }
        }
    }

    /// Takes in the tenants the feed reported (or, after an overflow, every
    /// tenant with traffic that is not followed yet).
    fn take_in(&mut self) {
        let manager = Arc::clone(&self.manager);
        let hooks = manager.cluster_hooks().expect("attached");
        let mut new = Vec::new();
        while let Some(id) = hooks.pop() {
            new.push(id);
        }
        if hooks.take_overflowed() {
            manager.for_each_tracker(|t| {
                if !t.is_watched() && !self.followed.contains_key(t.id()) {
                    new.push(Arc::clone(t.id_arc()));
                }
            });
        }
        for id in new {
            let Ok(tracker) = manager.get_tracker(&id) else {
                continue;
            };
            match self.followed.get_mut(&id) {
                // Deleted and created again since: follow the new tracker
                // (its reports replace the old one's; the lease entry is
                // the tenant's on this broker, and its surplus goes back).
                Some(f) if !Arc::ptr_eq(&f.tracker, &tracker) => {
                    f.tracker = Arc::clone(&tracker);
                    f.last = RateSnapshot {
                        refused: [u64::MAX; 3],
                        ..tracker.rate_snapshot()
                    };
                    f.leaving = None;
                    f.idle_rounds = 0;
                    continue;
                }
                Some(_) => continue,
                None => {}
            }
            if !Arc::ptr_eq(tracker.id_arc(), &id) && tracker.is_watched() {
                // Replaced since (deleted and created again) and not called.
                continue;
            }
            let g = *tracker.clock_geometry();
            let caps = hooks.unfollowed_caps(&tracker.quotas(), &g);
            let snapshot = tracker.rate_snapshot();
            self.followed.insert(
                id,
                Followed {
                    tracker,
                    // Weights count from here. The first round counts as
                    // refused (wanting a fair share): the call that fed the
                    // tenant may have been refused at the idle share.
                    last: RateSnapshot {
                        refused: [u64::MAX; 3],
                        ..snapshot
                    },
                    applied: caps,
                    idle_rounds: 0,
                    leaving: None,
                    unacked: None,
                    pending: [0; 6],
                },
            );
        }
    }

    /// One round: the heartbeat, then a report per followed tenant.
    async fn round(&mut self, conn: &mut Connection) -> Result<(), String> {
        let ttl_ms = BROKER_TTL.as_millis() as u64;
        let live: u64 = self
            .heartbeat
            .key(BROKERS)
            .arg(&self.node)
            .arg(ttl_ms)
            .invoke_async(conn)
            .await
            .map_err(|e| super::redis_conn::summary(&e))?;
        let live = live.max(1);
        self.status.0.live.store(live, Ordering::Relaxed);
        self.hooks().set_cluster(live, true);
        if !self.reachable {
            // Back from an outage (or the first round): tenants not followed
            // return from fallback shares to idle shares.
            self.recap_unfollowed();
        }
        self.take_in();

        let geometry = self.manager.geometry();
        let n = geometry.buckets;
        let round_seq = self.seq;
        self.seq += 1;
        let mut reports = Vec::with_capacity(self.followed.len());
        for (id, f) in &mut self.followed {
            let quotas = f.tracker.quotas();
            let snap = f.tracker.rate_snapshot();
            let rates = crate::quotas::rates_of(&quotas);
            let mut quota_window = [-1i64; 3];
            let mut demand = [0i64; 3];
            let mut applied = [-1i64; 3];
            let mut busy = false;
            for r in 0..3 {
                let admitted = snap.totals[r].saturating_sub(f.last.totals[r]);
                let refused = snap.refused[r] != f.last.refused[r];
                busy |= admitted > 0 || refused || snap.in_window[r] > 0;
                if rates[r] >= 0 {
                    let qw = geometry.window_limit(rates[r] as u64);
                    quota_window[r] = qw as i64;
                    demand[r] = if refused {
                        // Wants more than it had: as much as it can get.
                        -1
                    } else {
                        // Its rate over the last round as a window, with a
                        // tenth more and one bucket of a fair share to grow.
                        let rate = admitted.saturating_mul(n);
                        let grow = rate / 10 + crate::cluster_hooks::idle_share(qw, live, n);
                        rate.saturating_add(grow).min(qw) as i64
                    };
                    applied[r] = f.applied[r].map_or(qw as i64, |a| a as i64);
                }
            }
            // Leases: keep what is held and a batch more; give the rest back
            // (locally first, so nothing can use it once Redis has it back).
            let mut release = [0u64; 6];
            if let Some(entry) = self.leases.get(id) {
                // Never wait for the lock here: an acquire holding it may be
                // waiting for this very thread (its lease request). Busy:
                // give back next round.
                match entry.try_lock() {
                    Ok(mut lease) => {
                        let reserve = std::mem::take(&mut lease.touched);
                        for (k, held) in LEASED.iter().enumerate() {
                            let quota = quotas.get(held.quota_type()).max(0) as u64;
                            let using = f.tracker.held(*held);
                            let batch = if reserve { lease_batch(quota, live) } else { 0 };
                            let keep = using.saturating_add(batch).min(lease.units[k]);
                            release[k] = lease.units[k] - keep;
                            lease.units[k] = keep;
                            busy |= keep > 0;
                        }
                    }
                    Err(_) => busy = true,
                }
            }
            busy |= f.unacked.is_some() || f.pending.iter().any(|&u| u > 0);
            // A tenant replaced (deleted, maybe created again) or deleted
            // since: its old tracker leaves; a new one is fed by its calls.
            let replaced = f.tracker.status() == crate::TenantStatus::Deleted;
            f.idle_rounds = if busy { 0 } else { f.idle_rounds + 1 };
            // Letting a tenant go takes two rounds: watch it again and read
            // its totals; a round later, leave only if no call cleared the
            // watch bit and the totals did not move (a call that was past
            // its status check at the rewatch has landed by then). Any
            // later call feeds it again. (Loom model 13.)
            let mut leave = false;
            match f.leaving {
                Some(at_rewatch) => {
                    if !busy && f.tracker.is_watched() && snap.totals == at_rewatch {
                        leave = true;
                    } else {
                        f.leaving = None;
                        f.idle_rounds = 0;
                    }
                }
                None if f.idle_rounds > n => {
                    f.tracker.rewatch();
                    f.leaving = Some(f.tracker.rate_snapshot().totals);
                }
                None => {}
            }
            let leave = leave || (replaced && f.unacked.is_none());
            // The give-back rides on this report, unless an earlier report's
            // answer is outstanding: then that report goes again, and this
            // give-back waits for the next.
            let (seq, release) = match f.unacked {
                Some((seq, earlier)) => {
                    for (p, r) in f.pending.iter_mut().zip(release) {
                        *p += r;
                    }
                    (seq, earlier)
                }
                None => {
                    let mut all = std::mem::take(&mut f.pending);
                    for (a, r) in all.iter_mut().zip(release) {
                        *a += r;
                    }
                    (round_seq, all)
                }
            };
            // Until its answer comes, this report is the outstanding one
            // (also if the round is cut off by its timeout).
            if release.iter().any(|&u| u > 0) {
                f.unacked = Some((seq, release));
            }
            reports.push(Report {
                id: Arc::clone(id),
                quota_window,
                demand,
                content: snap.in_window,
                applied,
                release,
                seq,
                storage: f.tracker.storage(),
                leave,
                snapshot: snap,
            });
        }

        let node = self.node.clone();
        let script = &self.report;
        let answers: Vec<(usize, Result<Vec<i64>, String>)> =
            stream::iter(reports.iter().enumerate())
                .map(|(i, rep)| {
                    let mut c = conn.clone();
                    let mut inv = script.key(tenant_key(&rep.id));
                    inv.key(storage_key(&rep.id));
                    inv.arg(&node)
                        .arg(rep.seq)
                        .arg(ttl_ms)
                        .arg(n)
                        .arg(live)
                        .arg(if rep.leave { 1 } else { 0 });
                    for r in 0..3 {
                        inv.arg(rep.quota_window[r])
                            .arg(rep.demand[r])
                            .arg(rep.content[r])
                            .arg(rep.applied[r]);
                    }
                    for units in rep.release {
                        inv.arg(units);
                    }
                    inv.arg(rep.storage);
                    async move {
                        let a: Result<Vec<i64>, String> = inv
                            .invoke_async(&mut c)
                            .await
                            .map_err(|e| super::redis_conn::summary(&e));
                        (i, a)
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;

        let hooks_live = live;
        let mut views = Vec::with_capacity(answers.len());
        let mut failed = None;
        for (i, answer) in answers {
            let rep = &reports[i];
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    failed.get_or_insert(e);
                    continue;
                }
            };
            let Some(f) = self.followed.get_mut(&rep.id) else {
                continue;
            };
            // Answered: its give-back is in Redis (applied now, or by the
            // earlier copy of this report that makes this one stale).
            if f.unacked.is_some_and(|(seq, _)| seq == rep.seq) {
                f.unacked = None;
            }
            if answer.first() == Some(&-2) || answer.len() < 8 {
                continue;
            }
            f.last = rep.snapshot;
            if rep.leave {
                let g = *f.tracker.clock_geometry();
                let caps = self
                    .manager
                    .cluster_hooks()
                    .expect("attached")
                    .unfollowed_caps(&f.tracker.quotas(), &g);
                f.tracker.cap_rates(caps);
                // Its lease entry (all zero: a lease keeps a tenant
                // followed) stays, so an acquire holding it meanwhile
                // cannot strand units.
                self.followed.remove(&rep.id);
                continue;
            }
            let mut caps = [None; 3];
            for r in 0..3 {
                if rep.quota_window[r] >= 0 {
                    let mut a = answer[r].max(0) as u64;
                    if self.rejoining {
                        a = a.min(fallback_share(rep.quota_window[r] as u64, hooks_live));
                    }
                    caps[r] = Some(a);
                }
            }
            f.tracker.cap_rates(caps);
            f.applied = caps;
            views.push((
                Arc::clone(&rep.id),
                TenantView {
                    allowance: caps.map(|c| c.map(|c| geometry.per_second(c))),
                    cluster_usage: [0, 1, 2]
                        .map(|r| geometry.per_second(answer[3 + r].max(0) as u64)),
                    brokers: answer[6].max(0) as u64,
                    cluster_storage: answer[7].max(0) as u64,
                },
            ));
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.rejoining = false;
        let mut map = self
            .status
            .0
            .tenants
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.clear();
        map.extend(views);
        Ok(())
    }

    /// Redis did not answer: every tenant to its fallback share. Tenants
    /// fed during the outage are followed (at the fallback share) at once,
    /// so that their traffic is reported when Redis returns.
    fn fall_back(&mut self) {
        let live = self.status.live_brokers();
        self.hooks().set_cluster(live, false);
        self.recap_unfollowed();
        self.take_in();
        // With Redis marked unreachable, a tenant's unfollowed caps are its
        // fallback shares.
        let manager = Arc::clone(&self.manager);
        let hooks = manager.cluster_hooks().expect("attached");
        for f in self.followed.values_mut() {
            let caps = hooks.unfollowed_caps(&f.tracker.quotas(), f.tracker.clock_geometry());
            f.tracker.cap_rates(caps);
            f.applied = caps;
        }
    }

    /// Caps every tenant not followed at its unfollowed share (idle while
    /// Redis answers, fallback while it does not).
    fn recap_unfollowed(&self) {
        let hooks = self.hooks();
        self.manager.for_each_tracker(|t| {
            if !self.followed.contains_key(t.id()) {
                let g = *t.clock_geometry();
                t.cap_rates(hooks.unfollowed_caps(&t.quotas(), &g));
            }
        });
    }
}

/// A tenant's key: the id as the hash tag, so that a Redis Cluster spreads
/// tenants over its masters.
fn tenant_key(id: &str) -> String {
    format!("streambus-tenancy:cq:{{{id}}}")
}

/// A tenant's storage reports (node -> bytes), in the slot of its key.
fn storage_key(id: &str) -> String {
    format!("streambus-tenancy:st:{{{id}}}")
}
