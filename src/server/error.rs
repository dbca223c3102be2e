//! Errors as the API answers them: a status and `{"error": "...", "code": "..."}`.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::admin::AdminError;
use super::api::ErrorBody;
use crate::Error;

/// An error answer: HTTP status, a stable machine-readable code, and a
/// message that says what was wrong (naming the field for bad input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `tenant_not_found`, `invalid_json`, `unauthorized`.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with code `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 with code `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 with code `not_found` (no such route).
    pub fn no_route(path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}; see /api/v1/openapi.json"),
        )
    }

    /// 500 with code `internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::TenantNotFound(_) => StatusCode::NOT_FOUND,
            Error::TenantExists(_) | Error::TenantNotActive { .. } => StatusCode::CONFLICT,
            Error::QuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::InvalidQuotas(_)
            | Error::InvalidTenantId(_)
            | Error::InvalidName(_)
            | Error::InvalidConfig(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Engine(e) => e.into(),
            AdminError::Invalid { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_value", e.to_string())
            }
            AdminError::HasConnections { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "tenant_has_connections",
                e.to_string(),
            ),
            AdminError::Changed(_) => {
                ApiError::new(StatusCode::CONFLICT, "tenant_changed", e.to_string())
            }
            AdminError::BadStoredTenant(_) => {
                tracing::error!(error = %e, "a stored tenant is invalid");
                ApiError::internal("a stored tenant is invalid; see the server log")
            }
            AdminError::Store(inner) => {
                tracing::error!(error = %inner, "admin change failed in the store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    if inner.kind() == super::StoreErrorKind::Unknown {
                        format!(
                            "the store's answer was lost: {}; the change may or may not have \
                             been applied: read the tenant before retrying",
                            inner.message()
                        )
                    } else {
                        format!(
                            "the store could not write: {}; the change was not applied",
                            inner.message()
                        )
                    },
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code.to_owned(),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read, so the connection cannot
            // carry another request: say so, or a pooling client reuses it
            // and its next request meets a closed socket.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"streambus-tenancy\""),
            );
        }
        resp
    }
}
