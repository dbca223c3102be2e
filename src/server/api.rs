//! The JSON the admin API speaks, with OpenAPI schemas, and the parsing of
//! request bodies into engine values (naming the field on bad input).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::alerts::Alert;
use super::error::ApiError;
use super::schema::{
    quota_max, QuotasPatch, TenantDescription, TenantId, TenantMetadata, TenantName, Tier,
};
use crate::{QuotaType, Quotas, Tenant, TenantCounters, TenantStats, Usage, UNLIMITED};

/// An error answer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong, naming the field for bad input.
    pub error: String,
    /// Stable machine-readable code, e.g. `tenant_not_found`.
    pub code: String,
}

/// A tenant's quotas as the API speaks them: the engine's [`Quotas`], whose
/// OpenAPI schema is built from [`QuotaType::ALL`] and the validation's
/// ranges.
pub type QuotasJson = Quotas;

/// Lifecycle state of a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusJson {
    /// Enforcement admits within quota.
    Active,
    /// Every admission is refused.
    Suspended,
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantJson {
    /// Unique id.
    #[schema(value_type = TenantId)]
    pub id: String,
    /// Display name.
    #[schema(value_type = TenantName)]
    pub name: String,
    /// Free text.
    #[schema(value_type = TenantDescription)]
    pub description: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: f64,
    /// Last change, seconds since the Unix epoch.
    pub updated_at: f64,
    /// Quotas in force.
    pub quotas: QuotasJson,
    /// Operator labels.
    #[schema(value_type = TenantMetadata)]
    pub metadata: BTreeMap<String, String>,
    /// `active` or `suspended`.
    #[schema(value_type = StatusJson)]
    pub status: String,
}

impl From<Tenant> for TenantJson {
    fn from(t: Tenant) -> Self {
        TenantJson {
            id: t.id,
            name: t.name,
            description: t.description,
            created_at: unix_secs(t.created_at),
            updated_at: unix_secs(t.updated_at),
            quotas: t.quotas,
            metadata: t.metadata,
            status: t.status.as_str().to_owned(),
        }
    }
}

/// One page of tenants, sorted by id.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantListJson {
    /// The tenants of this page.
    pub tenants: Vec<TenantJson>,
    /// How many tenants this page holds.
    pub count: usize,
    /// How many tenants there are in all.
    pub total: usize,
    /// The `after` of the next page: this page's last id when more tenants
    /// follow, `null` on the last page.
    #[schema(value_type = Option<TenantId>)]
    pub next: Option<String>,
}

/// A tenant's usage as the API speaks it: the engine's [`Usage`].
pub type UsageJson = Usage;

/// Lifetime admitted and refused counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountersJson {
    /// Bytes admitted (produce and consume).
    pub admitted_bytes: u64,
    /// Messages admitted.
    pub admitted_messages: u64,
    /// Requests admitted.
    pub admitted_requests: u64,
    /// Refusals by quota type.
    pub refused: BTreeMap<String, u64>,
    /// Calls refused because the tenant was suspended.
    pub refused_not_active: u64,
}

impl From<TenantCounters> for CountersJson {
    fn from(c: TenantCounters) -> Self {
        CountersJson {
            admitted_bytes: c.admitted_bytes,
            admitted_messages: c.admitted_messages,
            admitted_requests: c.admitted_requests,
            refused: QuotaType::ALL
                .iter()
                .map(|q| (q.as_str().to_owned(), c.refused(*q)))
                .collect(),
            refused_not_active: c.refused_not_active,
        }
    }
}

/// A quota at or above an alert threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertJson {
    /// The quota, e.g. `connections`.
    pub quota: String,
    /// `warning` (80%) or `critical` (95%).
    pub level: String,
    /// Utilization when last sampled, percent.
    pub utilization: f64,
    /// When the quota crossed into this level, seconds since the Unix epoch.
    pub since: f64,
}

impl From<&Alert> for AlertJson {
    fn from(a: &Alert) -> Self {
        AlertJson {
            quota: a.quota.as_str().to_owned(),
            level: a.level.as_str().to_owned(),
            utilization: a.utilization,
            since: unix_secs(a.since),
        }
    }
}

/// Everything about one tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsJson {
    /// The tenant.
    pub tenant: TenantJson,
    /// Its usage.
    pub usage: UsageJson,
    /// Percent of each limited quota in use.
    pub utilization: BTreeMap<String, f64>,
    /// Quotas at or above 80% when last sampled.
    pub alerts: Vec<AlertJson>,
    /// Lifetime admitted and refused counts.
    pub counters: CountersJson,
}

impl StatsJson {
    pub(crate) fn new(stats: TenantStats, alerts: &[Alert], counters: TenantCounters) -> Self {
        StatsJson {
            tenant: stats.tenant.into(),
            usage: stats.usage,
            utilization: stats.utilization,
            alerts: alerts.iter().map(AlertJson::from).collect(),
            counters: counters.into(),
        }
    }
}

/// Health: nothing about any tenant.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HealthJson {
    /// `ok`, or `degraded` while the tenant store in Redis is unreachable
    /// (reads answer from the last known tenants; changes fail).
    pub(crate) status: String,
    /// With a Redis store: `reachable` or `unreachable`, as the server's
    /// follower last found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redis: Option<String>,
}

/// A tenant to create. Give `quotas`, a `tier`, both (the tier is the base
/// and `quotas` override some of its fields), or neither (the `default`
/// tier).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Unique id.
    #[schema(value_type = TenantId)]
    pub id: String,
    /// Display name.
    #[schema(value_type = TenantName)]
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TenantDescription>)]
    pub description: Option<String>,
    /// Operator labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TenantMetadata>)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Quota fields to set over the tier's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<QuotasPatch>)]
    pub quotas: Option<Map<String, Value>>,
    /// A tier from the configuration: `free`, `pro`, `enterprise`,
    /// `default` or the operator's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Tier>)]
    pub tier: Option<String>,
}

/// Changes to a tenant: fields left out stay as they are. A `tier` resets
/// every quota to the tier's; `quotas` then override single fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TenantName>)]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TenantDescription>)]
    pub description: Option<String>,
    /// New metadata (replaces the old map whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TenantMetadata>)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Quota fields to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<QuotasPatch>)]
    pub quotas: Option<Map<String, Value>>,
    /// Reset the quotas to this tier first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Tier>)]
    pub tier: Option<String>,
}

/// Seconds since the Unix epoch, with fractions.
pub(crate) fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Parses a JSON request body, naming the field on a type error.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            "the request body is empty; send a JSON object",
        ));
    }
    // serde reads a struct from a JSON array too (`[null, null]` as the
    // fields in order); the API takes objects only.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let found = match first {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(b'-' | b'0'..=b'9') => "a number",
            _ => "something that is not JSON",
        };
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object: expected {{...}}, found {found}"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let message = if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            };
            ApiError::bad_request(message)
        } else {
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("malformed JSON: {inner}"),
            )
        }
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("malformed JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// A JSON number that is an integer in the `i64` range: `5`, and also
/// `5.0` or `5e0` (JSON Schema's `integer` admits those too).
fn integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        // -2^63 is an i64, 2^63 is not; every integral f64 between is exact.
        let in_range = (-(2f64.powi(63))..2f64.powi(63)).contains(&f);
        (f.fract() == 0.0 && in_range).then_some(f as i64)
    })
}

/// `base` with the fields of `patch` set: names in snake_case or the seed's
/// Go names, values integers of at least -1. Errors name the field.
pub(crate) fn quotas_overlay(base: Quotas, patch: &Map<String, Value>) -> Result<Quotas, ApiError> {
    let mut values = QuotaType::ALL.map(|q| base.get(q));
    let mut seen = [false; QuotaType::COUNT];
    for (key, value) in patch {
        let Some(q) = QuotaType::ALL
            .into_iter()
            .find(|q| q.field_name() == key || q.go_name() == key)
        else {
            let known: Vec<&str> = QuotaType::ALL.iter().map(|q| q.field_name()).collect();
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_quotas",
                format!(
                    "quotas.{key}: unknown quota; expected one of {} (or the seed's names, e.g. MaxBytesPerSecond)",
                    known.join(", ")
                ),
            ));
        };
        let field = q.field_name();
        if std::mem::replace(&mut seen[q.index()], true) {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_quotas",
                format!("quotas.{field} is given twice (by its snake_case and its Go name)"),
            ));
        }
        let Some(v) = integer(value) else {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_quotas",
                format!(
                    "quotas.{field} must be an integer from {UNLIMITED} (unlimited) to {}, got {value}",
                    quota_max(q)
                ),
            ));
        };
        values[q.index()] = v;
    }
    let quotas = Quotas::from_fn(|q| values[q.index()]);
    quotas.validate()?;
    Ok(quotas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_names() {
        assert_eq!(QuotaType::BytesPerSecond.go_name(), "MaxBytesPerSecond");
        assert_eq!(QuotaType::ConsumerGroups.go_name(), "MaxConsumerGroups");
    }

    #[test]
    fn overlay() {
        let patch = json!({"max_topics": 3, "MaxConnections": -1});
        let q = quotas_overlay(Quotas::default(), patch.as_object().unwrap()).unwrap();
        assert_eq!(
            q,
            Quotas {
                max_topics: 3,
                max_connections: -1,
                ..Quotas::default()
            }
        );
        // Integral numbers written as floats are integers, as JSON Schema
        // reads them.
        let patch = json!({"max_topics": 3.0, "max_partitions": 1e3});
        let q = quotas_overlay(Quotas::default(), patch.as_object().unwrap()).unwrap();
        assert_eq!((q.max_topics, q.max_partitions), (3, 1000));
        for (bad, needle) in [
            (json!({"max_topicz": 1}), "quotas.max_topicz"),
            (json!({"max_topics": -2}), "max_topics"),
            (json!({"max_topics": "5"}), "quotas.max_topics"),
            (json!({"max_topics": 1.5}), "quotas.max_topics"),
            (json!({"max_topics": 9.3e18}), "quotas.max_topics"),
            (json!({"max_topics": u64::MAX}), "quotas.max_topics"),
            (json!({"max_topics": 1, "MaxTopics": 2}), "twice"),
            (
                json!({"max_bytes_per_second": i64::MAX}),
                "max_bytes_per_second",
            ),
        ] {
            let e = quotas_overlay(Quotas::default(), bad.as_object().unwrap()).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(needle), "{} lacks {needle}", e.message);
        }
    }
}
