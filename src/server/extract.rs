//! Extractors that check a part of the request once, answer the API's own
//! error when it is wrong, and describe themselves in the OpenAPI document.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use super::error::ApiError;
use super::schema;
use crate::validate_tenant_id;

/// The `{id}` of a tenant route, checked with [`validate_tenant_id`]: a
/// handler that takes it never sees an invalid id.
#[derive(Debug)]
pub(crate) struct TenantIdPath(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for TenantIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("id: {}", e.body_text())))?;
        validate_tenant_id(&id)?;
        Ok(TenantIdPath(id))
    }
}

impl IntoParams for TenantIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("Tenant id"))
            .schema(Some(schema::tenant_id()))
            .build()]
    }
}
