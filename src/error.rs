//! Errors: small, specific, and cheap to build on the refusal path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{QuotaType, TenantStatus};

/// Everything the engine can answer besides "yes".
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "kind", content = "detail", rename_all = "snake_case")
)]
pub enum Error {
    /// A quota refused the call. Nothing of the call was recorded.
    QuotaExceeded(QuotaError),
    /// No tenant has this id.
    TenantNotFound(String),
    /// A tenant with this id already exists.
    TenantExists(String),
    /// The tenant is suspended (or was deleted while its handle was held).
    TenantNotActive {
        /// The tenant's id.
        id: String,
        /// Its status when the call was refused.
        status: TenantStatus,
    },
    /// A quota value is out of range; the message names the field.
    InvalidQuotas(String),
    /// A tenant id is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    InvalidTenantId(String),
    /// A tenant name is empty, too long or has control characters.
    InvalidName(String),
    /// A manager setting (window, bucket count) is out of range.
    InvalidConfig(String),
}

impl Error {
    /// The quota refusal inside, if this is one.
    pub fn as_quota_error(&self) -> Option<&QuotaError> {
        match self {
            Error::QuotaExceeded(q) => Some(q),
            _ => None,
        }
    }

    /// A stable, machine-readable code for the variant (`"quota_exceeded"`,
    /// `"tenant_not_found"`, ...), as used by the admin API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::TenantNotFound(_) => "tenant_not_found",
            Error::TenantExists(_) => "tenant_exists",
            Error::TenantNotActive { .. } => "tenant_not_active",
            Error::InvalidQuotas(_) => "invalid_quotas",
            Error::InvalidTenantId(_) => "invalid_tenant_id",
            Error::InvalidName(_) => "invalid_name",
            Error::InvalidConfig(_) => "invalid_config",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::QuotaExceeded(q) => fmt::Display::fmt(q, f),
            Error::TenantNotFound(id) => write!(f, "tenant {id:?} not found"),
            Error::TenantExists(id) => write!(f, "tenant {id:?} already exists"),
            Error::TenantNotActive { id, status } => {
                write!(f, "tenant {id:?} is {status}, not active")
            }
            Error::InvalidQuotas(m) => write!(f, "invalid quotas: {m}"),
            Error::InvalidTenantId(m) => write!(f, "invalid tenant id: {m}"),
            Error::InvalidName(m) => write!(f, "invalid tenant name: {m}"),
            Error::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<QuotaError> for Error {
    fn from(e: QuotaError) -> Self {
        Error::QuotaExceeded(e)
    }
}

/// A quota refused a call: which one, how much was in use, the limit, and
/// when the same call would be admitted.
///
/// Building one allocates nothing (the id is a shared `Arc<str>`), so an
/// overloaded broker can refuse millions of calls a second.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct QuotaError {
    /// The tenant refused.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_arc_str"))]
    pub tenant_id: Arc<str>,
    /// The quota that refused (the first one checked, if several would).
    pub quota_type: QuotaType,
    /// Usage when the call was refused: the rate over the window for rate
    /// quotas (per second), the count held, the storage reported, or for
    /// retention the hours asked for.
    pub current: i64,
    /// The quota's limit.
    pub limit: i64,
    /// For rate quotas: wait this long and the same call is admitted, if nothing
    /// else is recorded meanwhile (at most one window). `None` when the call
    /// alone exceeds the limit and can never be admitted, and for count,
    /// storage and retention quotas, which free up only on release.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "retry_after_ms", serialize_with = "ser_opt_duration")
    )]
    pub retry_after: Option<Duration>,
}

impl QuotaError {
    /// True if the call can never be admitted as it is (it alone exceeds a
    /// rate limit).
    pub fn is_never_admissible(&self) -> bool {
        self.quota_type.is_rate() && self.retry_after.is_none()
    }
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant {:?} exceeded its {} quota (current {}, limit {})",
            &*self.tenant_id, self.quota_type, self.current, self.limit
        )?;
        match self.retry_after {
            Some(d) => write!(f, "; retry after {d:?}"),
            None if self.quota_type.is_rate() => {
                f.write_str("; the call alone exceeds the limit and can never be admitted")
            }
            None => Ok(()),
        }
    }
}

impl std::error::Error for QuotaError {}

#[cfg(feature = "serde")]
fn ser_arc_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

#[cfg(feature = "serde")]
fn ser_opt_duration<S: serde::Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    // Milliseconds as a float: what an HTTP client turns into Retry-After.
    match v {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => s.serialize_none(),
    }
}
