//! Paging of `GET /api/v1/tenants`: the `limit` and `after` query
//! parameters, checked at the boundary, and their OpenAPI description,
//! built from the same constants the check uses.

use serde::Deserialize;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use super::error::ApiError;
use super::schema;
use crate::validate_tenant_id;

/// Tenants in a page of `GET /api/v1/tenants` when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// Largest `limit` accepted by `GET /api/v1/tenants`; a larger one gets 400.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// Query of `GET /api/v1/tenants`, as sent. Both are kept as text so that
/// a bad value gets the API's own message, naming the parameter and what
/// is allowed; any other parameter is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    limit: Option<String>,
    after: Option<String>,
}

/// A checked page request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PageRequest {
    /// Tenants whose ids sort after this one.
    pub(crate) after: Option<String>,
    /// At most this many, 1 to [`MAX_PAGE_LIMIT`].
    pub(crate) limit: usize,
}

impl ListParams {
    /// Checks `limit` (an integer from 1 to [`MAX_PAGE_LIMIT`]) and `after`
    /// (a valid tenant id, which need not exist).
    ///
    /// # Errors
    ///
    /// 400 naming the parameter, what it was and what is allowed.
    pub(crate) fn check(self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit {
            None => DEFAULT_PAGE_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit: must be an integer from 1 to {MAX_PAGE_LIMIT}, got {text:?}"
                    )))
                }
            },
        };
        if let Some(after) = &self.after {
            validate_tenant_id(after).map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    e.code(),
                    format!("after: {e} (the last id of the previous page)"),
                )
            })?;
        }
        Ok(PageRequest {
            after: self.after,
            limit,
        })
    }
}

impl IntoParams for ListParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_PAGE_LIMIT))
            .default(Some(DEFAULT_PAGE_LIMIT.into()));
        let after = schema::tenant_id();
        vec![
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(format!(
                    "Most tenants in the page: 1 to {MAX_PAGE_LIMIT}, default {DEFAULT_PAGE_LIMIT}."
                )))
                .schema(Some(limit))
                .build(),
            ParameterBuilder::new()
                .name("after")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "Exclusive cursor: only tenants whose ids sort after this one. Pass the \
                     `next` of the previous page; any valid tenant id works, existing or not.",
                ))
                .schema(Some(after))
                .build(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(limit: Option<&str>, after: Option<&str>) -> Result<PageRequest, ApiError> {
        ListParams {
            limit: limit.map(str::to_owned),
            after: after.map(str::to_owned),
        }
        .check()
    }

    #[test]
    fn limits() {
        assert_eq!(check(None, None).unwrap().limit, DEFAULT_PAGE_LIMIT);
        assert_eq!(check(Some("1"), None).unwrap().limit, 1);
        let max = MAX_PAGE_LIMIT.to_string();
        assert_eq!(check(Some(&max), None).unwrap().limit, MAX_PAGE_LIMIT);
        let over = (MAX_PAGE_LIMIT + 1).to_string();
        for bad in [
            "0",
            over.as_str(),
            "-1",
            "ten",
            "1.5",
            "",
            "99999999999999999999999",
        ] {
            let e = check(Some(bad), None).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.starts_with("limit: "), "{}", e.message);
            assert!(e.message.contains(&max), "{}", e.message);
        }
    }

    #[test]
    fn cursors() {
        let p = check(None, Some("acme.corp_1-a")).unwrap();
        assert_eq!(p.after.as_deref(), Some("acme.corp_1-a"));
        let long = "x".repeat(crate::MAX_TENANT_ID_LEN + 1);
        for bad in ["", "a b", "a/b", "é", long.as_str()] {
            let e = check(None, Some(bad)).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_tenant_id"));
            assert!(e.message.starts_with("after: "), "{}", e.message);
        }
    }
}
