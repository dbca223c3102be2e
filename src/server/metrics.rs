//! Prometheus metrics, read from the engine at scrape time.
//!
//! Nothing is recorded on the enforce path: the collector reads, per tenant,
//! the usage and quotas the engine holds and the lifetime counters it keeps
//! anyway ([`Manager::get_counters`]), when Prometheus scrapes.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `streambus_tenants` | `status` | tenants by status |
//! | `streambus_tenant_status` | `tenant`, `status` | 1 for the tenant's status |
//! | `streambus_tenant_usage` | `tenant`, `quota` | usage now (count held, storage bytes, or rate per second) |
//! | `streambus_tenant_limit` | `tenant`, `quota` | the quota's limit; absent when unlimited |
//! | `streambus_tenant_utilization_percent` | `tenant`, `quota` | usage / limit x 100 (0 when unlimited) |
//! | `streambus_tenant_admitted_bytes_total` | `tenant` | bytes admitted |
//! | `streambus_tenant_admitted_messages_total` | `tenant` | messages admitted |
//! | `streambus_tenant_admitted_requests_total` | `tenant` | requests admitted |
//! | `streambus_tenant_refused_total` | `tenant`, `quota` | calls refused, by quota (`not_active` for suspended) |
//! | `streambus_tenant_alert_level` | `tenant`, `quota` | 1 warning (80%), 2 critical (95%); absent otherwise |

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::alerts::{AlertLevel, Alerts};
use crate::tracker::usage_of;
use crate::{Manager, QuotaType, Tenant, TenantCounters, TenantStatus, Usage};

/// The `/metrics` registry: the engine's tenants, read at each scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics for `manager`'s tenants and `alerts`' state.
    pub fn new(manager: Arc<Manager>, alerts: Arc<Alerts>) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(TenantCollector { manager, alerts }));
        Metrics { registry }
    }

    /// The registry, to add the embedding program's own metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Everything in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub const CONTENT_TYPE: &'static str =
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
}

#[derive(Debug)]
struct TenantCollector {
    manager: Arc<Manager>,
    alerts: Arc<Alerts>,
}

/// One tenant as read at a scrape.
struct Sample {
    tenant: Tenant,
    usage: Usage,
    counters: TenantCounters,
}

fn gauge<L, V>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    ConstGauge<V>: EncodeMetric,
{
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Quotas with a usage value (all but retention).
const USAGE_QUOTAS: [QuotaType; 10] = [
    QuotaType::BytesPerSecond,
    QuotaType::MessagesPerSecond,
    QuotaType::RequestsPerSecond,
    QuotaType::Storage,
    QuotaType::Topics,
    QuotaType::Partitions,
    QuotaType::Connections,
    QuotaType::Producers,
    QuotaType::Consumers,
    QuotaType::ConsumerGroups,
];

impl Collector for TenantCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let samples: Vec<Sample> = self
            .manager
            .list_tenants()
            .into_iter()
            .filter_map(|tenant| {
                let usage = self.manager.get_usage(&tenant.id).ok()?;
                let counters = self.manager.get_counters(&tenant.id).ok()?;
                Some(Sample {
                    tenant,
                    usage,
                    counters,
                })
            })
            .collect();
        let alerts = self.alerts.all();
        let e = &mut encoder;

        let count =
            |s: TenantStatus| samples.iter().filter(|x| x.tenant.status == s).count() as i64;
        let (active, suspended) = (count(TenantStatus::Active), count(TenantStatus::Suspended));
        gauge(
            e,
            "streambus_tenants",
            "Tenants by status.",
            [("active", active), ("suspended", suspended)]
                .into_iter()
                .map(|(status, n)| ([("status", status)], n)),
        )?;
        gauge(
            e,
            "streambus_tenant_status",
            "1 for the tenant's lifecycle status.",
            samples.iter().map(|s| {
                (
                    [
                        ("tenant", s.tenant.id.as_str()),
                        ("status", s.tenant.status.as_str()),
                    ],
                    1i64,
                )
            }),
        )?;
        gauge(
            e,
            "streambus_tenant_usage",
            "Usage now: count held, storage bytes, or rate per second over the window.",
            samples.iter().flat_map(|s| {
                USAGE_QUOTAS.iter().map(move |q| {
                    let v = usage_of(&s.usage, *q).unwrap_or(0);
                    ([("tenant", s.tenant.id.as_str()), ("quota", q.as_str())], v)
                })
            }),
        )?;
        gauge(
            e,
            "streambus_tenant_limit",
            "The quota's limit (absent when unlimited).",
            samples.iter().flat_map(|s| {
                QuotaType::ALL.iter().filter_map(move |q| {
                    let limit = s.tenant.quotas.get(*q);
                    (limit >= 0).then(|| {
                        (
                            [("tenant", s.tenant.id.as_str()), ("quota", q.as_str())],
                            limit,
                        )
                    })
                })
            }),
        )?;
        gauge(
            e,
            "streambus_tenant_utilization_percent",
            "Usage as a percentage of the limit (0 when unlimited).",
            samples.iter().flat_map(|s| {
                USAGE_QUOTAS.iter().map(move |q| {
                    let u = crate::tracker::utilization(&s.usage, &s.tenant.quotas, *q);
                    ([("tenant", s.tenant.id.as_str()), ("quota", q.as_str())], u)
                })
            }),
        )?;
        for (name, help, pick) in [
            (
                "streambus_tenant_admitted_bytes",
                "Bytes admitted by produce and consume.",
                (|c: &TenantCounters| c.admitted_bytes) as fn(&TenantCounters) -> u64,
            ),
            (
                "streambus_tenant_admitted_messages",
                "Messages admitted by produce and consume.",
                |c: &TenantCounters| c.admitted_messages,
            ),
            (
                "streambus_tenant_admitted_requests",
                "Requests admitted.",
                |c: &TenantCounters| c.admitted_requests,
            ),
        ] {
            counter(
                e,
                name,
                help,
                samples
                    .iter()
                    .map(|s| ([("tenant", s.tenant.id.as_str())], pick(&s.counters))),
            )?;
        }
        counter(
            e,
            "streambus_tenant_refused",
            "Calls refused, by the quota that refused them (not_active: suspended tenant).",
            samples.iter().flat_map(|s| {
                let id = s.tenant.id.as_str();
                QuotaType::ALL
                    .iter()
                    .map(move |q| {
                        (
                            [("tenant", id), ("quota", q.as_str())],
                            s.counters.refused(*q),
                        )
                    })
                    .chain(std::iter::once((
                        [("tenant", id), ("quota", "not_active")],
                        s.counters.refused_not_active,
                    )))
            }),
        )?;
        gauge(
            e,
            "streambus_tenant_alert_level",
            "1 while a quota is at or above 80% (warning), 2 at or above 95% (critical).",
            alerts.iter().flat_map(|(tenant, list)| {
                list.iter().map(move |a| {
                    let level = match a.level {
                        AlertLevel::Warning => 1i64,
                        AlertLevel::Critical => 2,
                    };
                    (
                        [("tenant", tenant.as_str()), ("quota", a.quota.as_str())],
                        level,
                    )
                })
            }),
        )?;
        Ok(())
    }
}
