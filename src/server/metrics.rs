//! Prometheus metrics, read from the engine at scrape time.
//!
//! Nothing is recorded on the enforce path: a scrape reads, per tenant, the
//! usage and quotas the engine holds and the lifetime counters it keeps
//! anyway ([`Manager::get_counters`]).
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `streambus_tenants` | `status` | tenants by status; always present |
//! | `streambus_tenant_status` | `tenant`, `status` | 1 for the tenant's status |
//! | `streambus_tenant_usage` | `tenant`, `quota` | usage now (count held, storage bytes, or rate per second) |
//! | `streambus_tenant_limit` | `tenant`, `quota` | the quota's limit; absent when unlimited |
//! | `streambus_tenant_utilization_percent` | `tenant`, `quota` | usage / limit x 100 (0 when unlimited) |
//! | `streambus_tenant_admitted_bytes_total` | `tenant` | bytes admitted |
//! | `streambus_tenant_admitted_messages_total` | `tenant` | messages admitted |
//! | `streambus_tenant_admitted_requests_total` | `tenant` | requests admitted |
//! | `streambus_tenant_refused_total` | `tenant`, `quota` | calls refused, by quota (`not_active` for suspended) |
//! | `streambus_tenant_alert_level` | `tenant`, `quota` | 1 warning (80%), 2 critical (95%); absent otherwise |
//!
//! With a Redis follower ([`Metrics::with_follower`]), four series more,
//! without labels (their exact meaning: [`FollowerStatus`]):
//!
//! | metric | meaning |
//! | --- | --- |
//! | `streambus_redis_up` | 1 while the follower's last command to Redis was answered, else 0 |
//! | `streambus_follower_applied_version` | version of the last change applied to this engine |
//! | `streambus_follower_lag_versions` | changes in the store not applied yet, as of the follower's last read of the store's version counter |
//! | `streambus_follower_lag_seconds` | 0 while Redis is up and every change the store held at the last read is applied; else seconds since the last instant that was so |
//!
//! With a cluster sync ([`Metrics::with_cluster`], feature `cluster`; see
//! [`ClusterSync`](super::ClusterSync)):
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `streambus_cluster_redis_up` | | 1 while the sync's last round reached Redis, else 0 (tenants at fallback shares) |
//! | `streambus_cluster_brokers` | | brokers heard from within the TTL (the last seen, while Redis is down) |
//! | `streambus_cluster_sync_rounds_total` | | rounds run |
//! | `streambus_cluster_sync_failures_total` | | rounds that failed (Redis unreachable, an error, too slow) |
//! | `streambus_cluster_sync_duration_seconds` | `le` | histogram of round durations |
//! | `streambus_tenant_cluster_allowance` | `tenant`, `quota` | the local allowance in force, per second; tenants the sync follows only |
//! | `streambus_tenant_cluster_usage` | `tenant`, `quota` | the cluster-wide rate per second, and storage bytes (`max_storage_bytes`): every broker's last report |
//!
//! Every row of the first table but the first is per tenant: about 47 series a tenant. Which
//! tenants get them is [`TenantSeries`] ([`Metrics::with_tenant_series`]):
//! all (the default), only those with a quota at or above a utilization
//! (`above:80` picks the tenants at the warning level now, each with every
//! one of its series), or none. `streambus_tenants` counts every tenant whatever the choice.
//!
//! # Scrapes at scale
//!
//! At 100,000 tenants with every tenant's series the text is about 370 MB
//! and renders in about 0.4 s on one core (`BENCHMARKS.md`). A scrape
//! therefore:
//!
//! - reads each tenant once, at the start, into a fixed-size record (id,
//!   status, quotas, usage, counters, alert levels; no copy of its name,
//!   description or metadata, no allocation per tenant), then writes the
//!   families from those records, sorted by tenant id, straight into the
//!   output (each line from static names, the id and a formatted number);
//! - renders on tokio's blocking pool, never on an async worker (`scrape.rs`);
//! - streams the text as it is rendered, in chunks of 64 KiB with at most 4
//!   waiting for the connection, so its buffers stay under 400 KiB whatever
//!   the tenant count (the records are what grows: about 340 bytes a tenant
//!   whose series are written);
//! - renders one at a time: a scrape that arrives while another renders
//!   waits for it, up to 5 s, then gets `503 Service Unavailable` with
//!   `Retry-After: 5` (a pair of Prometheus servers scraping together is
//!   served one after the other, not refused);
//! - stops when the client goes away, and cuts the response off with an
//!   error (never a short body that looks whole) when the client has taken
//!   nothing for 30 s; either way the next scrape can render.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::alerts::{AlertLevel, Alerts};
use super::health::FollowerStatus;
use super::scrape::Gate;
use crate::sync::StdArc;
use crate::tracker::utilization;
use crate::{Manager, QuotaType, Quotas, TenantCounters, TenantStatus, Usage};

/// Which tenants get per-tenant series (every series with a `tenant` label).
///
/// Parsed from `all`, `none` or `above:N` (N a whole percentage from 0 to
/// 100), and written back the same way; with serde it is that string.
///
/// # Examples
///
/// ```
/// use streambus_tenancy::server::TenantSeries;
///
/// assert_eq!("above:80".parse(), Ok(TenantSeries::AboveUtilization(80)));
/// assert_eq!("none".parse(), Ok(TenantSeries::None));
/// let err = "above:120".parse::<TenantSeries>().unwrap_err();
/// assert!(err.to_string().contains("from 0 to 100"), "{err}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TenantSeries {
    /// Every tenant (the default).
    #[default]
    All,
    /// Tenants with at least one quota at or above this utilization,
    /// percent, when the scrape reads them, each with all its series.
    /// `AboveUtilization(80)` shows the tenants at the warning level. The
    /// text form takes 0 to 100; a larger value, set in code, picks only
    /// tenants past a limit (a quota lowered, or a restore over it).
    AboveUtilization(u8),
    /// No tenant: only the aggregate series.
    None,
}

impl TenantSeries {
    /// Whether a tenant with this usage and these quotas gets its series.
    fn exports(self, usage: &Usage, quotas: &Quotas) -> bool {
        match self {
            TenantSeries::All => true,
            TenantSeries::None => false,
            TenantSeries::AboveUtilization(percent) => {
                usage_quotas().any(|q| utilization(usage, quotas, q) >= f64::from(percent))
            }
        }
    }
}

impl fmt::Display for TenantSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantSeries::All => f.write_str("all"),
            TenantSeries::AboveUtilization(p) => write!(f, "above:{p}"),
            TenantSeries::None => f.write_str("none"),
        }
    }
}

impl FromStr for TenantSeries {
    type Err = ParseTenantSeriesError;

    fn from_str(s: &str) -> Result<TenantSeries, ParseTenantSeriesError> {
        let err = |problem: String| ParseTenantSeriesError {
            input: s.to_owned(),
            problem,
        };
        match s {
            "all" => return Ok(TenantSeries::All),
            "none" => return Ok(TenantSeries::None),
            _ => {}
        }
        let Some(percent) = s.strip_prefix("above:") else {
            return Err(err("not one of the choices".into()));
        };
        if percent.is_empty() {
            return Err(err("the percentage is missing".into()));
        }
        match percent.parse::<u8>() {
            Ok(p) if p <= 100 && percent.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(TenantSeries::AboveUtilization(p))
            }
            _ => Err(err(format!(
                "{percent:?} is not a whole percentage from 0 to 100"
            ))),
        }
    }
}

impl serde::Serialize for TenantSeries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TenantSeries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TenantSeries, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A [`TenantSeries`] that did not parse: what was given and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseTenantSeriesError {
    input: String,
    problem: String,
}

impl ParseTenantSeriesError {
    /// The text that did not parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseTenantSeriesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid tenant series {:?}: {}; use all, none, or above:N with N a whole \
             percentage from 0 to 100 (e.g. above:80)",
            self.input, self.problem
        )
    }
}

impl std::error::Error for ParseTenantSeriesError {}

/// The `/metrics` registry: the engine's tenants, read at each scrape.
#[derive(Debug)]
pub struct Metrics {
    manager: Arc<Manager>,
    alerts: Arc<Alerts>,
    series: TenantSeries,
    /// The Redis follower's health, if there is one.
    follower: Option<FollowerStatus>,
    /// The cluster sync's status, if there is one.
    #[cfg(feature = "cluster")]
    cluster: Option<super::ClusterStatus>,
    /// The embedding program's own metrics.
    registry: Registry,
    gate: Gate,
}

impl Metrics {
    /// Metrics for `manager`'s tenants and `alerts`' state, with every
    /// tenant's series.
    pub fn new(manager: Arc<Manager>, alerts: Arc<Alerts>) -> Metrics {
        Metrics {
            manager,
            alerts,
            series: TenantSeries::All,
            follower: None,
            #[cfg(feature = "cluster")]
            cluster: None,
            registry: Registry::default(),
            gate: Gate::new(),
        }
    }

    /// Writes per-tenant series only for the tenants `series` picks; the
    /// aggregate `streambus_tenants` is always written.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use streambus_tenancy::server::{Alerts, Metrics, TenantSeries};
    /// use streambus_tenancy::{Manager, Quotas};
    ///
    /// let manager = Arc::new(Manager::new());
    /// manager.create_tenant("acme", "ACME", Quotas::default())?;
    /// let metrics = Metrics::new(manager, Arc::new(Alerts::new()))
    ///     .with_tenant_series("none".parse()?);
    /// let text = metrics.render();
    /// assert!(text.contains("streambus_tenants{status=\"active\"} 1"));
    /// assert!(!text.contains("tenant=\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_tenant_series(mut self, series: TenantSeries) -> Metrics {
        self.series = series;
        self
    }

    /// Adds the Redis follower's health: `streambus_redis_up`,
    /// `streambus_follower_applied_version`,
    /// `streambus_follower_lag_versions` and
    /// `streambus_follower_lag_seconds`, read from `status` at each scrape.
    pub fn with_follower(mut self, status: FollowerStatus) -> Metrics {
        self.follower = Some(status);
        self
    }

    /// Adds a cluster sync's series (the table above), read from `status`
    /// at each scrape.
    #[cfg(feature = "cluster")]
    pub fn with_cluster(mut self, status: super::ClusterStatus) -> Metrics {
        self.cluster = Some(status);
        self
    }

    /// Which tenants get per-tenant series.
    pub fn tenant_series(&self) -> TenantSeries {
        self.series
    }

    /// The registry, to add the embedding program's own metrics (written
    /// after the tenants' series).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Everything in the Prometheus text format (version 0.0.4), as one
    /// string. `/metrics` streams the same text with [`Metrics::render_to`];
    /// only `/metrics` renders one scrape at a time, these calls do not wait.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.render_to(&mut out);
        out
    }

    /// Writes everything in the Prometheus text format (version 0.0.4) to
    /// `out` as it is rendered, a few bytes to a few KiB at a time, so that
    /// `out` can pass it on without holding the whole text.
    ///
    /// # Errors
    ///
    /// The first error `out` returns; the render stops there.
    pub fn render_to<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        let snapshot = Snapshot::read(&self.manager, &self.alerts, self.series);
        snapshot.write(&mut Text(out))?;
        if let Some(status) = &self.follower {
            write_follower(status, &mut Text(out))?;
        }
        #[cfg(feature = "cluster")]
        if let Some(status) = &self.cluster {
            write_cluster(status, &mut Text(out))?;
        }
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }

    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub const CONTENT_TYPE: &'static str =
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    #[cfg(test)]
    pub(crate) fn gate_mut(&mut self) -> &mut Gate {
        &mut self.gate
    }
}

/// One tenant as a scrape reads it: fixed size, nothing of it allocated.
struct Reading {
    id: StdArc<str>,
    status: TenantStatus,
    alerts: AlertLevels,
    quotas: Quotas,
    /// `tenant_id` left empty: the id is `id`.
    usage: Usage,
    counters: TenantCounters,
}

/// Every tenant read once: counts by status, and the records of the tenants
/// whose series are written, sorted by id.
struct Snapshot {
    active: u64,
    suspended: u64,
    readings: Vec<Reading>,
}

impl Snapshot {
    fn read(manager: &Manager, alerts: &Alerts, series: TenantSeries) -> Snapshot {
        let (mut active, mut suspended) = (0, 0);
        let mut readings = Vec::new();
        if series == TenantSeries::All {
            readings.reserve(manager.len());
        }
        manager.for_each_tracker(|t| {
            let status = t.status();
            match status {
                TenantStatus::Active => active += 1,
                TenantStatus::Suspended => suspended += 1,
                // Deleted while the walk ran.
                TenantStatus::Deleted => return,
            }
            if series == TenantSeries::None {
                return;
            }
            let (usage, quotas) = (t.usage_unlabelled(), t.quotas());
            if series.exports(&usage, &quotas) {
                readings.push(Reading {
                    id: StdArc::clone(t.id_arc()),
                    status,
                    alerts: AlertLevels::default(),
                    quotas,
                    usage,
                    counters: t.counters(),
                });
            }
        });
        readings.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        if !readings.is_empty() {
            alerts.for_each(|tenant, quota, level| {
                if let Ok(i) = readings.binary_search_by(|r| (*r.id).cmp(tenant)) {
                    readings[i].alerts.set(quota, level);
                }
            });
        }
        Snapshot {
            active,
            suspended,
            readings,
        }
    }

    /// Every family, one after the other; the per-tenant ones only if a
    /// tenant was chosen.
    fn write<W: fmt::Write>(&self, w: &mut Text<'_, W>) -> fmt::Result {
        const TENANTS: &str = "streambus_tenants";
        w.header(TENANTS, "Tenants by status.", "gauge")?;
        for (status, n) in [("active", self.active), ("suspended", self.suspended)] {
            w.0.write_str(TENANTS)?;
            w.0.write_str("{status=\"")?;
            w.0.write_str(status)?;
            w.0.write_str("\"}")?;
            w.number(n)?;
        }
        if self.readings.is_empty() {
            return Ok(());
        }
        let all = &self.readings;

        let name = "streambus_tenant_status";
        w.header(name, "1 for the tenant's lifecycle status.", "gauge")?;
        for r in all {
            w.sample(name, &r.id, Some(("status", r.status.as_str())), 1u64)?;
        }

        let name = "streambus_tenant_usage";
        let help = "Usage now: count held, storage bytes, or rate per second over the window.";
        w.header(name, help, "gauge")?;
        for r in all {
            for q in usage_quotas() {
                let v = r.usage.get(q).unwrap_or(0);
                w.sample(name, &r.id, Some(("quota", q.as_str())), v)?;
            }
        }

        let name = "streambus_tenant_limit";
        w.header(name, "The quota's limit (absent when unlimited).", "gauge")?;
        for r in all {
            for q in QuotaType::ALL {
                let limit = r.quotas.get(q);
                if limit >= 0 {
                    w.sample(name, &r.id, Some(("quota", q.as_str())), limit)?;
                }
            }
        }

        let name = "streambus_tenant_utilization_percent";
        let help = "Usage as a percentage of the limit (0 when unlimited).";
        w.header(name, help, "gauge")?;
        for r in all {
            for q in usage_quotas() {
                let u = utilization(&r.usage, &r.quotas, q);
                w.sample(name, &r.id, Some(("quota", q.as_str())), u)?;
            }
        }

        type Pick = fn(&TenantCounters) -> u64;
        let admitted: [(&str, &str, Pick); 3] = [
            (
                "streambus_tenant_admitted_bytes_total",
                "Bytes admitted by produce and consume.",
                |c| c.admitted_bytes,
            ),
            (
                "streambus_tenant_admitted_messages_total",
                "Messages admitted by produce and consume.",
                |c| c.admitted_messages,
            ),
            (
                "streambus_tenant_admitted_requests_total",
                "Requests admitted.",
                |c| c.admitted_requests,
            ),
        ];
        for (name, help, pick) in admitted {
            w.header(name, help, "counter")?;
            for r in all {
                w.sample(name, &r.id, None, pick(&r.counters))?;
            }
        }

        let name = "streambus_tenant_refused_total";
        let help = "Calls refused, by the quota that refused them (not_active: suspended tenant).";
        w.header(name, help, "counter")?;
        for r in all {
            for q in QuotaType::ALL {
                let n = r.counters.refused(q);
                w.sample(name, &r.id, Some(("quota", q.as_str())), n)?;
            }
            let n = r.counters.refused_not_active;
            w.sample(name, &r.id, Some(("quota", "not_active")), n)?;
        }

        let name = "streambus_tenant_alert_level";
        let help = "1 while a quota is at or above 80% (warning), 2 at or above 95% (critical).";
        w.header(name, help, "gauge")?;
        for r in all {
            for q in QuotaType::ALL {
                if let Some(level) = r.alerts.get(q) {
                    w.sample(name, &r.id, Some(("quota", q.as_str())), level)?;
                }
            }
        }
        Ok(())
    }
}

/// The follower's series, each one unlabelled sample.
fn write_follower<W: fmt::Write>(status: &FollowerStatus, w: &mut Text<'_, W>) -> fmt::Result {
    let name = "streambus_redis_up";
    w.header(name, "1 while Redis answers the follower, else 0.", "gauge")?;
    w.0.write_str(name)?;
    w.number(u64::from(status.redis_up()))?;

    let name = "streambus_follower_applied_version";
    let help = "Version of the last change from Redis applied to this engine.";
    w.header(name, help, "gauge")?;
    w.0.write_str(name)?;
    w.number(status.applied_version())?;

    let name = "streambus_follower_lag_versions";
    let help = "Changes in Redis not applied to this engine yet, as of the last read.";
    w.header(name, help, "gauge")?;
    w.0.write_str(name)?;
    w.number(status.lag_versions())?;

    let name = "streambus_follower_lag_seconds";
    let help = "0 while Redis is up and every change in it is applied; \
                else seconds since the last instant that was so.";
    w.header(name, help, "gauge")?;
    w.0.write_str(name)?;
    w.number(status.lag().as_secs_f64())
}

/// The cluster sync's series.
#[cfg(feature = "cluster")]
fn write_cluster<W: fmt::Write>(status: &super::ClusterStatus, w: &mut Text<'_, W>) -> fmt::Result {
    let unlabelled: [(&str, &str, &str, u64); 4] = [
        (
            "streambus_cluster_redis_up",
            "1 while the cluster sync reaches Redis, else 0 (tenants at fallback shares).",
            "gauge",
            u64::from(status.redis_up()),
        ),
        (
            "streambus_cluster_brokers",
            "Brokers heard from within the TTL.",
            "gauge",
            status.live_brokers(),
        ),
        (
            "streambus_cluster_sync_rounds_total",
            "Cluster sync rounds run.",
            "counter",
            status.rounds(),
        ),
        (
            "streambus_cluster_sync_failures_total",
            "Cluster sync rounds that failed.",
            "counter",
            status.failures(),
        ),
    ];
    for (name, help, kind, value) in unlabelled {
        w.header(name, help, kind)?;
        w.0.write_str(name)?;
        w.number(value)?;
    }
    let name = "streambus_cluster_sync_duration_seconds";
    w.header(name, "Duration of cluster sync rounds.", "histogram")?;
    let (buckets, sum, count) = status.latency();
    for (bound, c) in buckets {
        w.0.write_str(name)?;
        w.0.write_str("_bucket{le=\"")?;
        if bound.is_finite() {
            bound.write(w.0)?;
        } else {
            w.0.write_str("+Inf")?;
        }
        w.0.write_str("\"}")?;
        w.number(c)?;
    }
    w.0.write_str(name)?;
    w.0.write_str("_sum")?;
    w.number(sum)?;
    w.0.write_str(name)?;
    w.0.write_str("_count")?;
    w.number(count)?;

    let tenants = status.tenants();
    let rates = [
        "max_bytes_per_second",
        "max_messages_per_second",
        "max_requests_per_second",
    ];
    let name = "streambus_tenant_cluster_allowance";
    let help = "Local allowance in force, per second, for tenants the cluster sync follows.";
    w.header(name, help, "gauge")?;
    for (id, view) in &tenants {
        for (q, a) in rates.iter().zip(view.allowance) {
            if let Some(a) = a {
                w.sample(name, id, Some(("quota", q)), a)?;
            }
        }
    }
    let name = "streambus_tenant_cluster_usage";
    let help = "Cluster-wide rate per second, and storage bytes: every broker's last report.";
    w.header(name, help, "gauge")?;
    for (id, view) in &tenants {
        for (q, u) in rates.iter().zip(view.cluster_usage) {
            w.sample(name, id, Some(("quota", q)), u)?;
        }
        w.sample(
            name,
            id,
            Some(("quota", "max_storage_bytes")),
            view.cluster_storage,
        )?;
    }
    Ok(())
}

/// The text format written straight to the output: a line is its metric
/// name, `tenant` label and maybe one more (static names, values that need
/// no escaping but the id), and the value formatted as prometheus-client
/// formats it (`itoa`, `dtoa`).
struct Text<'w, W>(&'w mut W);

impl<W: fmt::Write> Text<'_, W> {
    /// `# HELP` and `# TYPE` (help texts here have nothing to escape).
    fn header(&mut self, name: &str, help: &str, kind: &str) -> fmt::Result {
        let out = &mut *self.0;
        out.write_str("# HELP ")?;
        out.write_str(name)?;
        out.write_str(" ")?;
        out.write_str(help)?;
        out.write_str("\n# TYPE ")?;
        out.write_str(name)?;
        out.write_str(" ")?;
        out.write_str(kind)?;
        out.write_str("\n")
    }

    /// `name{tenant="id"[,key="value"]} number`.
    #[inline]
    fn sample(
        &mut self,
        name: &str,
        tenant: &str,
        label: Option<(&str, &str)>,
        value: impl Number,
    ) -> fmt::Result {
        let out = &mut *self.0;
        out.write_str(name)?;
        out.write_str("{tenant=\"")?;
        label_value(out, tenant)?;
        if let Some((key, v)) = label {
            out.write_str("\",")?;
            out.write_str(key)?;
            out.write_str("=\"")?;
            out.write_str(v)?;
        }
        out.write_str("\"}")?;
        self.number(value)
    }

    /// ` number` and the end of the line.
    #[inline]
    fn number(&mut self, value: impl Number) -> fmt::Result {
        self.0.write_str(" ")?;
        value.write(self.0)?;
        self.0.write_str("\n")
    }
}

/// A label value, escaped as the format wants. Tenant ids cannot hold a
/// character that needs it (`validate_tenant_id`); checked anyway.
#[inline]
fn label_value<W: fmt::Write>(out: &mut W, v: &str) -> fmt::Result {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        return out.write_str(v);
    }
    for c in v.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '"' => out.write_str("\\\"")?,
            '\n' => out.write_str("\\n")?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// A sample value.
trait Number {
    fn write<W: fmt::Write>(self, out: &mut W) -> fmt::Result;
}

impl Number for u64 {
    #[inline]
    fn write<W: fmt::Write>(self, out: &mut W) -> fmt::Result {
        out.write_str(itoa::Buffer::new().format(self))
    }
}

impl Number for i64 {
    #[inline]
    fn write<W: fmt::Write>(self, out: &mut W) -> fmt::Result {
        out.write_str(itoa::Buffer::new().format(self))
    }
}

impl Number for f64 {
    #[inline]
    fn write<W: fmt::Write>(self, out: &mut W) -> fmt::Result {
        if self.is_finite() {
            out.write_str(dtoa::Buffer::new().format_finite(self))
        } else if self.is_nan() {
            out.write_str("NaN")
        } else if self > 0.0 {
            out.write_str("+Inf")
        } else {
            out.write_str("-Inf")
        }
    }
}

/// The alert level of each quota of one tenant: two bits per quota type
/// (0 none, 1 warning, 2 critical), at `2 * QuotaType::index()`.
#[derive(Clone, Copy, Debug, Default)]
struct AlertLevels(u32);

impl AlertLevels {
    const BITS: usize = 2;
    const MASK: u32 = (1 << Self::BITS) - 1;

    fn shift(q: QuotaType) -> usize {
        q.index() * Self::BITS
    }

    fn set(&mut self, q: QuotaType, level: AlertLevel) {
        let code = match level {
            AlertLevel::Warning => 1,
            AlertLevel::Critical => 2,
        };
        self.0 = (self.0 & !(Self::MASK << Self::shift(q))) | (code << Self::shift(q));
    }

    /// The metric's value: 1 warning, 2 critical; `None` without an alert.
    fn get(self, q: QuotaType) -> Option<u64> {
        match (self.0 >> Self::shift(q)) & Self::MASK {
            0 => None,
            code => Some(u64::from(code)),
        }
    }
}

// Every quota type's level fits in the word.
const _: () = assert!(QuotaType::ALL.len() * AlertLevels::BITS <= u32::BITS as usize);

/// Quotas with a usage value (all but retention).
fn usage_quotas() -> impl Iterator<Item = QuotaType> {
    QuotaType::ALL.into_iter().filter(|q| q.has_usage())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_levels_pack_two_bits_per_quota() {
        let mut a = AlertLevels::default();
        for q in QuotaType::ALL {
            assert_eq!(a.get(q), None);
        }
        a.set(QuotaType::RetentionHours, AlertLevel::Critical);
        a.set(QuotaType::BytesPerSecond, AlertLevel::Warning);
        a.set(QuotaType::Topics, AlertLevel::Critical);
        a.set(QuotaType::Topics, AlertLevel::Warning);
        assert_eq!(a.get(QuotaType::BytesPerSecond), Some(1));
        assert_eq!(a.get(QuotaType::Topics), Some(1));
        assert_eq!(a.get(QuotaType::RetentionHours), Some(2));
        assert_eq!(a.get(QuotaType::Partitions), None);
    }

    #[test]
    fn label_values_are_escaped_and_numbers_formatted_like_prometheus_client() {
        let mut out = String::new();
        label_value(&mut out, "plain-id.1").unwrap();
        label_value(&mut out, "a\\b\"c\nd").unwrap();
        assert_eq!(out, "plain-id.1a\\\\b\\\"c\\nd");
        let num = |v: f64| {
            let mut s = String::new();
            v.write(&mut s).unwrap();
            s
        };
        assert_eq!(num(100.0), "100.0");
        assert_eq!(num(0.0), "0.0");
        let third = 100.0 / 3.0;
        assert_eq!(num(third).parse::<f64>(), Ok(third));
        assert_eq!(num(f64::INFINITY), "+Inf");
        assert_eq!(num(f64::NAN), "NaN");
    }
}
