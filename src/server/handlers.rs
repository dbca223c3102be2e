//! The admin API's handlers. Each carries its OpenAPI description
//! (`#[utoipa::path]`), from which the router is built, so the document at
//! `/api/v1/openapi.json` and the live routes come from one source.
//!
//! Reads (`GET`) answer from the engine directly. Changes run on the
//! blocking pool through [`Admin`](super::Admin), which answers only once
//! the change is synced to disk.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::api::{
    parse_body, quotas_overlay, CreateTenantRequest, ErrorBody, HealthJson, StatsJson, TenantJson,
    TenantListJson, UpdateTenantRequest, UsageJson,
};
use super::error::ApiError;
use super::extract::TenantIdPath;
use super::paging::ListParams;
use super::router::ApiState;
use crate::{NewTenant, Quotas};

/// Runs an admin change on the blocking pool (the store syncs to disk).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        // A panic's text is for the log, not for the client.
        tracing::error!(error = %e, "an admin change panicked");
        ApiError::internal(
            "the change could not be completed (an internal error; see the server log); \
             retry, or read the tenant to see whether it was applied",
        )
    })?
}

/// The request body, within the size limit.
fn body(state: &ApiState, bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            super::router::body_too_large(state.limits.max_body_bytes)
        } else {
            ApiError::new(e.status(), "invalid_request", e.body_text())
        }
    })
}

fn tier(state: &ApiState, name: &str) -> Result<Quotas, ApiError> {
    state.tiers.get(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_tier",
            format!(
                "tier: unknown tier {name:?}; known tiers: {}",
                state.tiers.names().join(", ")
            ),
        )
    })
}

/// One page of tenants, sorted by id: `?limit=N&after=<id>`.
///
/// Follow `next` (as `after`) until it is `null` to read every tenant.
#[utoipa::path(
    get, path = "/api/v1/tenants", tag = "tenants",
    params(ListParams),
    responses(
        (status = 200, description = "A page of tenants sorted by id, the total, and the next page's cursor", body = TenantListJson),
        (status = 400, description = "Invalid `limit` or `after`, or an unknown query parameter (the message names it)", body = ErrorBody),
        (status = 500, description = "The listing failed (an internal error; see the server log)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_tenants(
    State(state): State<ApiState>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<TenantListJson>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let page = q.check()?;
    let manager = std::sync::Arc::clone(state.admin.manager());
    // The walk visits every tenant: keep it off the async workers.
    let page =
        blocking(move || Ok(manager.list_tenants_page(page.after.as_deref(), page.limit))).await?;
    Ok(Json(TenantListJson {
        count: page.tenants.len(),
        tenants: page.tenants.into_iter().map(TenantJson::from).collect(),
        total: page.total,
        next: page.next,
    }))
}

/// Creates a tenant from quotas, a tier, or both.
#[utoipa::path(
    post, path = "/api/v1/tenants", tag = "tenants",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created and on disk", body = TenantJson,
            headers(("location" = String, description = "The tenant's URL"))),
        (status = 400, description = "Malformed JSON or an invalid value (the message names the field)", body = ErrorBody),
        (status = 409, description = "A tenant with this id exists", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create_tenant(
    State(state): State<ApiState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CreateTenantRequest = parse_body(&body(&state, bytes)?)?;
    let base = tier(&state, req.tier.as_deref().unwrap_or("default"))?;
    let quotas = match &req.quotas {
        Some(patch) => quotas_overlay(base, patch)?,
        None => base,
    };
    let new = NewTenant {
        id: req.id,
        name: req.name,
        description: req.description.unwrap_or_default(),
        metadata: req.metadata.unwrap_or_default(),
        quotas,
    };
    let admin = state.admin.clone();
    let tenant = blocking(move || Ok(admin.create(new)?)).await?;
    let location = format!("/api/v1/tenants/{}", tenant.id);
    let mut resp = (StatusCode::CREATED, Json(TenantJson::from(tenant))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The seed's `POST /admin/tenants`: the same as `POST /api/v1/tenants`.
#[utoipa::path(
    post, path = "/admin/tenants", tag = "seed aliases",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created and on disk", body = TenantJson,
            headers(("location" = String, description = "The tenant's URL"))),
        (status = 400, description = "Malformed JSON or an invalid value (the message names the field)", body = ErrorBody),
        (status = 409, description = "A tenant with this id exists", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn admin_create_tenant(
    state: State<ApiState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    create_tenant(state, bytes).await
}

/// One tenant.
#[utoipa::path(
    get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "The tenant", body = TenantJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_tenant(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<TenantJson>, ApiError> {
    Ok(Json(state.admin.manager().get_tenant(&id)?.into()))
}

/// Changes a tenant: fields left out stay as they are.
#[utoipa::path(
    put, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(TenantIdPath),
    request_body = UpdateTenantRequest,
    responses(
        (status = 200, description = "Changed and on disk", body = TenantJson),
        (status = 400, description = "Malformed JSON or an invalid value (the message names the field)", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn update_tenant(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<TenantJson>, ApiError> {
    let req: UpdateTenantRequest = parse_body(&body(&state, bytes)?)?;
    let base = req.tier.as_deref().map(|t| tier(&state, t)).transpose()?;
    let admin = state.admin.clone();
    let tenant = blocking(move || {
        admin.modify(&id, |t| {
            if let Some(n) = req.name {
                t.name = n;
            }
            if let Some(d) = req.description {
                t.description = d;
            }
            if let Some(m) = req.metadata {
                t.metadata = m;
            }
            // Overlay under the admin lock, so concurrent partial updates of
            // different quota fields never undo each other.
            let base = base.unwrap_or(t.quotas);
            t.quotas = match &req.quotas {
                Some(patch) => quotas_overlay(base, patch)?,
                None => base,
            };
            Ok::<(), ApiError>(())
        })
    })
    .await?;
    Ok(Json(tenant.into()))
}

/// Query of `DELETE /api/v1/tenants/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteParams {
    /// Delete even while the tenant holds connections.
    #[serde(default)]
    force: bool,
}

/// Deletes a tenant; refused while it holds connections unless `force=true`.
#[utoipa::path(
    delete, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(TenantIdPath, DeleteParams),
    responses(
        (status = 204, description = "Deleted, on disk"),
        (status = 400, description = "Invalid id or query", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "The tenant holds connections", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete_tenant(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
    query: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let admin = state.admin.clone();
    blocking(move || Ok(admin.delete(&id, q.force)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suspends a tenant: every admission is refused until it is activated.
#[utoipa::path(
    post, path = "/api/v1/tenants/{id}/suspend", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Suspended, on disk", body = TenantJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn suspend_tenant(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<TenantJson>, ApiError> {
    let admin = state.admin.clone();
    Ok(Json(
        blocking(move || Ok(admin.suspend(&id)?)).await?.into(),
    ))
}

/// Re-activates a suspended tenant.
#[utoipa::path(
    post, path = "/api/v1/tenants/{id}/activate", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Active, on disk", body = TenantJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 500, description = "The store failed; nothing was changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn activate_tenant(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<TenantJson>, ApiError> {
    let admin = state.admin.clone();
    Ok(Json(
        blocking(move || Ok(admin.activate(&id)?)).await?.into(),
    ))
}

fn stats(state: &ApiState, id: &str) -> Result<StatsJson, ApiError> {
    let m = state.admin.manager();
    let stats = m.get_tenant_stats(id)?;
    let counters = m.get_counters(id)?;
    Ok(StatsJson::new(stats, &state.alerts.of(id), counters))
}

/// A tenant, its usage, utilization, alerts and lifetime counters.
#[utoipa::path(
    get, path = "/api/v1/tenants/{id}/stats", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Stats", body = StatsJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn tenant_stats(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<StatsJson>, ApiError> {
    Ok(Json(stats(&state, &id)?))
}

/// The seed's `GET /admin/tenants/{id}/stats`: the same as
/// `GET /api/v1/tenants/{id}/stats`.
#[utoipa::path(
    get, path = "/admin/tenants/{id}/stats", tag = "seed aliases",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Stats", body = StatsJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn admin_tenant_stats(
    state: State<ApiState>,
    id: TenantIdPath,
) -> Result<Json<StatsJson>, ApiError> {
    tenant_stats(state, id).await
}

/// A tenant's usage now.
#[utoipa::path(
    get, path = "/api/v1/tenants/{id}/usage", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Usage", body = UsageJson),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn tenant_usage(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<UsageJson>, ApiError> {
    Ok(Json(state.admin.manager().get_usage(&id)?))
}

/// Percent in use of each limited quota (0 for unlimited).
#[utoipa::path(
    get, path = "/api/v1/tenants/{id}/utilization", tag = "tenants",
    params(TenantIdPath),
    responses(
        (status = 200, description = "Percent by quota", body = BTreeMap<String, f64>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn tenant_utilization(
    State(state): State<ApiState>,
    TenantIdPath(id): TenantIdPath,
) -> Result<Json<BTreeMap<String, f64>>, ApiError> {
    Ok(Json(state.admin.manager().get_utilization(&id)?))
}

/// This document, with this server's tiers.
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3 document", content_type = "application/json"),
        (status = 500, description = "The document could not be written (see the server log)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn openapi_json(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let doc = state.openapi().to_pretty_json().map_err(|e| {
        tracing::error!(error = %e, "the OpenAPI document could not be written");
        ApiError::internal("the OpenAPI document could not be written; see the server log")
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((headers, doc).into_response())
}

/// Liveness: 200 while the server answers, `degraded` while its tenant
/// store in Redis is unreachable. No token needed; no tenant data.
#[utoipa::path(
    get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "Up: `ok`, or `degraded` while Redis is unreachable", body = HealthJson))
)]
pub(crate) async fn healthz(State(state): State<ApiState>) -> Json<HealthJson> {
    let redis_up = state.follower.as_ref().map(|f| f.redis_up());
    Json(HealthJson {
        status: if redis_up == Some(false) {
            "degraded"
        } else {
            "ok"
        }
        .into(),
        redis: redis_up.map(|up| if up { "reachable" } else { "unreachable" }.into()),
    })
}

/// Prometheus metrics, read from the engine at scrape time and streamed as
/// they are rendered on the blocking pool. Any token (`admin` or `read`),
/// unless the server serves them publicly. One scrape renders at a time;
/// another waits for it up to 5 s, then gets 503 with `Retry-After`.
#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
        (status = 503, description = "Another scrape kept the renderer busy for 5 s; retry after `Retry-After` seconds", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn metrics(State(state): State<ApiState>) -> Response {
    match std::sync::Arc::clone(&state.metrics).scrape().await {
        Ok(body) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::metrics::Metrics::CONTENT_TYPE),
            );
            (headers, body).into_response()
        }
        Err(busy) => {
            let mut resp = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics_busy",
                busy.to_string(),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, busy.retry_after_secs().into());
            resp
        }
    }
}

/// Unknown routes: 401 under `/api` and `/admin` without the token (so the
/// API's shape is not probed anonymously), else 404, as JSON.
pub(crate) async fn fallback(
    State(state): State<ApiState>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiError {
    let path = uri.path();
    let guarded = ["/api", "/admin"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if guarded {
        if let Err(e) = super::auth::check(&state, &headers) {
            return e;
        }
    }
    ApiError::no_route(path)
}
