//! Tenants: identity, lifecycle status, and the usage views handed to callers.

use crate::Usage;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Quotas};

/// Longest tenant id, in bytes (ids are ASCII: characters too).
pub const MAX_TENANT_ID_LEN: usize = 128;
/// Longest tenant name, in characters (Unicode scalar values, which is what
/// JSON Schema's `maxLength` counts, so the API's document can state it).
pub const MAX_NAME_LEN: usize = 256;

/// A tenant as the admin API sees it: identity, quotas, metadata and status.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tenant {
    /// Unique id: 1 to 128 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
    pub id: String,
    /// Display name: 1 to 256 characters, no control characters.
    pub name: String,
    /// Free text.
    #[cfg_attr(feature = "serde", serde(default))]
    pub description: String,
    /// When the tenant was created.
    #[cfg_attr(feature = "serde", serde(with = "unix_time"))]
    pub created_at: SystemTime,
    /// When its name, quotas, metadata or status last changed.
    #[cfg_attr(feature = "serde", serde(with = "unix_time"))]
    pub updated_at: SystemTime,
    /// Its current quotas.
    pub quotas: Quotas,
    /// Operator-defined labels.
    #[cfg_attr(feature = "serde", serde(default))]
    pub metadata: BTreeMap<String, String>,
    /// Lifecycle state.
    pub status: TenantStatus,
}

/// Lifecycle of a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum TenantStatus {
    /// Enforcement admits within quota.
    Active,
    /// Every enforce and acquire is refused; releases still work so the
    /// tenant can drain.
    Suspended,
    /// Removed; handles still held refuse every admission.
    Deleted,
}

impl TenantStatus {
    /// `"active"`, `"suspended"` or `"deleted"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Deleted => "deleted",
        }
    }

    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            TenantStatus::Active => 0,
            TenantStatus::Suspended => 1,
            TenantStatus::Deleted => 2,
        }
    }

    pub(crate) const fn from_u8(v: u8) -> TenantStatus {
        match v {
            0 => TenantStatus::Active,
            1 => TenantStatus::Suspended,
            _ => TenantStatus::Deleted,
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tenant holds: its count quotas' counts and the storage it occupies.
///
/// The engine keeps these in memory only, so after a broker restarts they
/// read 0 while the broker still holds its topics, partitions and storage.
/// At start-up the broker re-reports them with
/// [`Manager::restore_usage`](crate::Manager::restore_usage), which sets
/// every field, zeros included, without the limit check.
///
/// # Examples
///
/// ```
/// use streambus_tenancy::{HeldUsage, Manager, Quotas};
///
/// let manager = Manager::new();
/// manager.create_tenant("acme", "ACME", Quotas { max_topics: 2, ..Quotas::default() })?;
/// // The broker holds 3 topics of 4 partitions on disk: more than the quota
/// // now allows, and still what it holds.
/// let held = HeldUsage { topics: 3, partitions: 12, storage_bytes: 1 << 30, ..HeldUsage::default() };
/// manager.restore_usage("acme", &held)?;
/// assert_eq!(HeldUsage::from(&manager.get_usage("acme")?), held);
/// assert!(manager.enforce_topic_quota("acme", 1).is_err()); // until two are released
/// # Ok::<(), streambus_tenancy::Error>(())
/// ```
///
/// With `serde`, every field must be given and no other is accepted: a
/// restore sets them all, so a misspelt one must not silently become 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct HeldUsage {
    /// Connections held.
    pub connections: u64,
    /// Producers held.
    pub producers: u64,
    /// Consumers held.
    pub consumers: u64,
    /// Consumer groups held.
    pub consumer_groups: u64,
    /// Topics held.
    pub topics: u64,
    /// Partitions held.
    pub partitions: u64,
    /// Storage occupied, bytes.
    pub storage_bytes: u64,
}

impl From<&Usage> for HeldUsage {
    /// The held part of a usage reading (rates and the id left out).
    fn from(u: &Usage) -> HeldUsage {
        HeldUsage {
            connections: u.connections,
            producers: u.producers,
            consumers: u.consumers,
            consumer_groups: u.consumer_groups,
            topics: u.topics,
            partitions: u.partitions,
            storage_bytes: u.storage_bytes,
        }
    }
}

/// Everything about one tenant: the tenant, its usage and utilization.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TenantStats {
    /// The tenant.
    pub tenant: Tenant,
    /// Its usage.
    pub usage: Usage,
    /// Percent of each limited quota in use, keyed by `QuotaType::as_str()`.
    pub utilization: BTreeMap<String, f64>,
}

/// One page of tenants in id order, from
/// [`Manager::list_tenants_page`](crate::Manager::list_tenants_page).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TenantPage {
    /// The tenants of this page, sorted by id.
    pub tenants: Vec<Tenant>,
    /// How many tenants there were in all while the page was read.
    pub total: usize,
    /// The last id of this page when more tenants sort after it, else
    /// `None`: pass it as `after` to read the next page.
    pub next: Option<String>,
}

/// The admin-path fields of a tenant, swapped whole on update.
#[derive(Clone, Debug)]
pub(crate) struct TenantInfo {
    pub(crate) name: Box<str>,
    pub(crate) description: Box<str>,
    /// Nanoseconds since the Unix epoch ([`to_nanos`]): 8 bytes where a
    /// `SystemTime` takes 16, exact from 1677 to 2262.
    pub(crate) created_at_ns: i64,
    pub(crate) updated_at_ns: i64,
    pub(crate) metadata: BTreeMap<String, String>,
}

/// A time as nanoseconds since the Unix epoch, saturating outside the `i64`
/// range (years 1677 to 2262).
pub(crate) fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// [`to_nanos`] back.
pub(crate) fn from_nanos(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Checks a tenant id: 1 to [`MAX_TENANT_ID_LEN`] characters of
/// `[A-Za-z0-9._-]`, other than `.` and `..`.
///
/// `.` and `..` are refused because the admin API's routes carry the id as
/// a path segment, where URL normalization removes them: a tenant with such
/// an id could be created but never read, changed or deleted.
///
/// # Errors
///
/// [`Error::InvalidTenantId`] saying what is wrong.
pub fn validate_tenant_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::InvalidTenantId(format!(
            "the id is empty; use 1 to {MAX_TENANT_ID_LEN} characters of A-Z a-z 0-9 . _ -"
        )));
    }
    if id.len() > MAX_TENANT_ID_LEN {
        return Err(Error::InvalidTenantId(format!(
            "the id is {} bytes long; at most {MAX_TENANT_ID_LEN} are allowed",
            id.len()
        )));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(Error::InvalidTenantId(format!(
            "{id:?} contains {c:?}; only A-Z a-z 0-9 . _ - are allowed"
        )));
    }
    if id == "." || id == ".." {
        return Err(Error::InvalidTenantId(format!(
            "{id:?} is not an id: a URL path cannot carry it; use at least one of A-Z a-z 0-9 _ -"
        )));
    }
    Ok(())
}

/// Checks a tenant name: 1 to [`MAX_NAME_LEN`] characters, none of them a
/// control character ([`char::is_control`]).
///
/// # Errors
///
/// [`Error::InvalidName`] saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidName(format!(
            "the name is empty; use 1 to {MAX_NAME_LEN} characters"
        )));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_LEN {
        return Err(Error::InvalidName(format!(
            "the name is {chars} characters long; at most {MAX_NAME_LEN} are allowed"
        )));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(Error::InvalidName(format!(
            "the name contains the control character {c:?}"
        )));
    }
    Ok(())
}

#[cfg(feature = "serde")]
mod unix_time {
    //! `SystemTime` as RFC 3339-free plain numbers: seconds since the Unix
    //! epoch, with fractions, which every language parses.
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    pub(crate) fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        s.serialize_f64(secs)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<SystemTime, D::Error> {
        let secs: f64 = serde::Deserialize::deserialize(d)?;
        if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
            return Err(serde::de::Error::custom(format!(
                "timestamp must be seconds since 1970 between 0 and 1e12, got {secs}"
            )));
        }
        Ok(UNIX_EPOCH + Duration::from_secs_f64(secs))
    }
}
