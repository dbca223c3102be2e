//! The admin API as an `axum::Router`, and its OpenAPI document.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v1/tenants` | list, with count |
//! | `POST /api/v1/tenants` (alias `POST /admin/tenants`) | create from quotas and/or a tier |
//! | `GET`, `PUT`, `DELETE /api/v1/tenants/{id}` | read, change, delete (`?force=true` while connections are held) |
//! | `POST /api/v1/tenants/{id}/suspend`, `/activate` | lifecycle |
//! | `GET /api/v1/tenants/{id}/stats` (alias `GET /admin/tenants/{id}/stats`), `/usage`, `/utilization` | monitoring |
//! | `GET /api/v1/openapi.json` | this API as OpenAPI 3 |
//! | `GET /metrics`, `GET /healthz` | Prometheus and liveness, no token |
//!
//! Every `/api` and `/admin` request needs `Authorization: Bearer <token>`.
//! Errors are `{"error": "...", "code": "..."}` with 400 (malformed JSON,
//! invalid values, naming the field), 401, 404, 405, 409, 413 (body over
//! [`MAX_BODY_BYTES`]) or 500 (the store failed; nothing was changed).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::Admin;
use super::alerts::Alerts;
use super::auth::{require_token, Token};
use super::config::Tiers;
use super::error::ApiError;
use super::handlers;
use super::metrics::Metrics;

/// Largest request body accepted: 1 MiB. Larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A body over [`MAX_BODY_BYTES`] is read and thrown away up to this size
/// before the 413 goes out, so that a client that writes its whole request
/// before reading the answer gets the 413 rather than a broken pipe; past
/// it, the 413 goes out at once and the connection is closed.
const DRAIN_LIMIT: u64 = 8 << 20;

/// What the handlers share: the admin path over the engine and store, the
/// token, the tiers, the alert state and the metrics.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub(crate) admin: Arc<Admin>,
    pub(crate) token: Arc<Token>,
    pub(crate) tiers: Arc<Tiers>,
    pub(crate) alerts: Arc<Alerts>,
    pub(crate) metrics: Arc<Metrics>,
}

impl ApiState {
    /// State for [`router`], with the built-in tiers.
    pub fn new(admin: Arc<Admin>, token: Token) -> ApiState {
        let alerts = Arc::new(Alerts::new());
        let metrics = Arc::new(Metrics::new(
            Arc::clone(admin.manager()),
            Arc::clone(&alerts),
        ));
        ApiState {
            admin,
            token: Arc::new(token),
            tiers: Arc::new(Tiers::default()),
            alerts,
            metrics,
        }
    }

    /// Uses these tiers for `"tier": "NAME"`.
    pub fn with_tiers(mut self, tiers: Tiers) -> ApiState {
        self.tiers = Arc::new(tiers);
        self
    }

    /// Uses this metrics registry (for example one holding the embedding
    /// program's own metrics too, built with [`Metrics::new`] over the same
    /// manager and [`ApiState::alerts`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> ApiState {
        self.metrics = Arc::new(metrics);
        self
    }

    /// The admin path.
    pub fn admin(&self) -> &Arc<Admin> {
        &self.admin
    }

    /// The alert state shown in stats and `/metrics`.
    pub fn alerts(&self) -> &Arc<Alerts> {
        &self.alerts
    }

    /// Samples alerts every `interval` on the current tokio runtime until the
    /// returned task is aborted.
    pub fn spawn_alert_sampler(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let alerts = Arc::clone(&self.alerts);
        let manager = Arc::clone(self.admin.manager());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (a, m) = (Arc::clone(&alerts), Arc::clone(&manager));
                // Sampling walks every tenant: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || a.sample(&m)).await;
            }
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "streambus-tenancy admin API",
        description = "Tenants and quotas of a message broker: create, change, suspend and watch them. \
                       Every change is on disk when it is acknowledged.",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tenants", description = "Tenant lifecycle and monitoring"),
        (name = "seed aliases", description = "The seed's /admin routes"),
        (name = "meta", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes that need the token, and the ones that do not.
fn routes() -> (OpenApiRouter<ApiState>, OpenApiRouter<ApiState>) {
    let guarded = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::list_tenants, handlers::create_tenant))
        .routes(routes!(
            handlers::get_tenant,
            handlers::update_tenant,
            handlers::delete_tenant
        ))
        .routes(routes!(handlers::suspend_tenant))
        .routes(routes!(handlers::activate_tenant))
        .routes(routes!(handlers::tenant_stats))
        .routes(routes!(handlers::tenant_usage))
        .routes(routes!(handlers::tenant_utilization))
        .routes(routes!(handlers::admin_create_tenant))
        .routes(routes!(handlers::admin_tenant_stats))
        .routes(routes!(handlers::openapi_json));
    let open = OpenApiRouter::new()
        .routes(routes!(handlers::healthz))
        .routes(routes!(handlers::metrics));
    (guarded, open)
}

/// The OpenAPI 3 document of [`router`], generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (guarded, open) = routes();
    guarded.merge(open).into_openapi()
}

/// The admin API, `/metrics` and `/healthz` over `state`.
///
/// Mount it in any axum server; run [`ApiState::spawn_alert_sampler`] to
/// get alerts.
pub fn router(state: ApiState) -> Router {
    let (guarded, open) = routes();
    let (guarded, _) = guarded.split_for_parts();
    let (open, _) = open.split_for_parts();
    guarded
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .merge(open)
        .fallback(handlers::fallback)
        .layer(middleware::map_response(json_method_not_allowed))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(read_whole_body))
        .with_state(state)
}

/// Reads every request's body to its end before anything answers.
///
/// hyper closes a connection whose request body was left unread, and a
/// client that pooled it, or is still writing the body, then fails with a
/// broken pipe instead of reading the answer (a 401 before the body is
/// read, a 413). Reading the whole body first, keeping at most
/// [`MAX_BODY_BYTES`] of it, makes every answer readable.
async fn read_whole_body(req: Request, next: Next) -> Response {
    let (parts, mut body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return too_large();
    }
    let mut kept = Vec::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                let mut resp =
                    ApiError::bad_request(format!("the request body could not be read: {e}"))
                        .into_response();
                resp.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                return resp;
            }
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                return too_large();
            }
            if seen <= MAX_BODY_BYTES as u64 {
                kept.extend_from_slice(&data);
            }
        }
    }
    if seen > MAX_BODY_BYTES as u64 {
        return too_large();
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

fn too_large() -> Response {
    body_too_large().into_response()
}

/// The 413 for a body over [`MAX_BODY_BYTES`].
pub(crate) fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the limit of {MAX_BODY_BYTES} bytes"),
    )
}

/// axum answers a wrong method with an empty 405; give it the JSON error
/// body every other error has, keeping the `Allow` header.
async fn json_method_not_allowed(resp: Response) -> Response {
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED
        || resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return resp;
    }
    // The Allow header is added further out, by axum itself.
    let mut out = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method; the Allow header lists those it takes",
    )
    .into_response();
    if let Some(a) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, a.clone());
    }
    out
}
