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
//! | `GET /metrics` | Prometheus; any token (`admin` or `read`), none with [`ApiState::with_public_metrics`] |
//! | `GET /healthz` | liveness, no token, no tenant data; `degraded` while Redis is unreachable |
//! | `GET /api/v1/tenants/{id}/history` | the last 15 minutes of its traffic, while watched |
//! | `GET /api/v1/whoami` | the token's name and role |
//! | `GET /`, `/ui/app.js`, `/ui/app.css` | the dashboard, no token (it holds no data; see `dashboard.rs`) |
//!
//! Every `/api` and `/admin` request needs `Authorization: Bearer <token>`;
//! a `read` token may only `GET`. Errors are `{"error": "...", "code":
//! "..."}` with 400 (malformed JSON, a body that is not an object, invalid
//! values, naming the field), 401, 403 (a read token asking for a change),
//! 404, 405, 409, 413 (body over [`Limits::max_body_bytes`]), 500 (the
//! store failed; nothing was changed) or 503 (over the request timeout).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as UtoipaOpenApi, Ref};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::Admin;
use super::alerts::Alerts;
use super::auth::{require_read_token, require_token, Token, Tokens};
use super::config::Tiers;
use super::dashboard;
use super::error::ApiError;
use super::handlers;
use super::health::FollowerStatus;
use super::history::{self, History};
use super::limits::Limits;
use super::metrics::Metrics;
use super::schema;

/// Largest request body accepted by default: 1 MiB. Larger ones get 413;
/// [`Limits::max_body_bytes`] sets another.
pub const MAX_BODY_BYTES: usize = super::limits::DEFAULT_MAX_BODY_BYTES;

/// Shortest interval [`ApiState::spawn_alert_sampler`] samples at.
pub const MIN_ALERT_INTERVAL: Duration = Duration::from_millis(10);

/// A body over the limit is read and thrown away up to this many times the
/// limit (at least 8 MiB) before the 413 goes out, so that a client that
/// writes its whole request before reading the answer gets the 413 rather
/// than a broken pipe. Past it, `RequestBodyLimitLayer` refuses at once.
fn drain_limit(max_body: usize) -> usize {
    max_body.saturating_mul(8).max(8 << 20)
}

/// What the handlers share: the admin path over the engine and store, the
/// tokens, the tiers, the alert state, the metrics and the limits.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub(crate) admin: Arc<Admin>,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) tiers: Arc<Tiers>,
    pub(crate) alerts: Arc<Alerts>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) history: Arc<History>,
    pub(crate) limits: Limits,
    pub(crate) public_metrics: bool,
    pub(crate) follower: Option<FollowerStatus>,
}

impl ApiState {
    /// State for [`router`] with one admin token (named `admin`), the
    /// built-in tiers and the default [`Limits`]; `/metrics` needs a token.
    pub fn new(admin: Arc<Admin>, token: Token) -> ApiState {
        let alerts = Arc::new(Alerts::new());
        let metrics = Arc::new(Metrics::new(
            Arc::clone(admin.manager()),
            Arc::clone(&alerts),
        ));
        ApiState {
            admin,
            tokens: Arc::new(Tokens::from(token)),
            tiers: Arc::new(Tiers::default()),
            alerts,
            metrics,
            history: Arc::new(History::new()),
            limits: Limits::default(),
            public_metrics: false,
            follower: None,
        }
    }

    /// Accepts these tokens (with their roles) instead.
    pub fn with_tokens(mut self, tokens: Tokens) -> ApiState {
        self.tokens = Arc::new(tokens);
        self
    }

    /// Uses these tiers for `"tier": "NAME"`.
    pub fn with_tiers(mut self, tiers: Tiers) -> ApiState {
        self.tiers = Arc::new(tiers);
        self
    }

    /// Uses these limits (the request timeout, the concurrency limit and the
    /// body limit apply in [`router`]; the others in
    /// [`serve`](super::serve)).
    ///
    /// # Errors
    ///
    /// If they are invalid ([`Limits::validate`]).
    pub fn with_limits(mut self, limits: Limits) -> Result<ApiState, String> {
        limits.validate()?;
        self.limits = limits;
        Ok(self)
    }

    /// Serves `/metrics` without a token (it lists every tenant id with its
    /// limits and usage: only where the port is not reachable by tenants).
    pub fn with_public_metrics(mut self, public: bool) -> ApiState {
        self.public_metrics = public;
        self
    }

    /// Uses this metrics registry (for example one holding the embedding
    /// program's own metrics too, built with [`Metrics::new`] over the same
    /// manager and [`ApiState::alerts`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> ApiState {
        self.metrics = Arc::new(metrics);
        self
    }

    /// Makes `/healthz` report Redis as its follower sees it: `ok` with
    /// `"redis": "reachable"`, or `degraded` (still 200) with `"redis":
    /// "unreachable"`. Give the same status to [`Metrics::with_follower`]
    /// for the lag in `/metrics`.
    pub fn with_follower(mut self, status: FollowerStatus) -> ApiState {
        self.follower = Some(status);
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

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The OpenAPI 3 document of [`router`] over this state: [`openapi`]
    /// with this state's tiers.
    pub fn openapi(&self) -> UtoipaOpenApi {
        schema::with_tiers(openapi(), &self.tiers)
    }

    /// The recent traffic of the tenants the dashboard watches.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Samples alerts, and the [`History`] of watched tenants, every
    /// `interval` (at least [`MIN_ALERT_INTERVAL`]; a shorter one is raised
    /// to it) on the current tokio runtime until the returned task is
    /// aborted. A sample that panics is logged and the sampler goes on.
    pub fn spawn_alert_sampler(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let alerts = Arc::clone(&self.alerts);
        let history = Arc::clone(&self.history);
        let manager = Arc::clone(self.admin.manager());
        let interval = interval.max(MIN_ALERT_INTERVAL);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (a, h, m) = (
                    Arc::clone(&alerts),
                    Arc::clone(&history),
                    Arc::clone(&manager),
                );
                // Sampling walks every tenant: keep it off the async workers.
                let sample = move || {
                    a.sample(&m);
                    h.sample(&m, std::time::SystemTime::now(), std::time::Instant::now());
                };
                if let Err(e) = tokio::task::spawn_blocking(sample).await {
                    tracing::error!("an alert sample failed: {e}");
                }
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

/// The routes that need a token, `/metrics`, and `/healthz`, each group's
/// document listing what the layers [`router`] puts around it answer.
fn routes() -> (
    OpenApiRouter<ApiState>,
    OpenApiRouter<ApiState>,
    OpenApiRouter<ApiState>,
) {
    let mut guarded = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(routes!(history::tenant_history))
        .routes(routes!(handlers::admin_create_tenant))
        .routes(routes!(handlers::admin_tenant_stats))
        .routes(routes!(handlers::openapi_json))
        .routes(routes!(super::auth::whoami));
    document_layer(guarded.get_openapi_mut(), |method, responses| {
        // `require_token`.
        responses.insert(401, "Missing or wrong token");
        if method != HttpMethod::Get {
            responses.insert(403, "The token may only read (role `read`)");
        }
        // `read_body`.
        responses.insert(400, "The request body could not be read");
        responses.insert(
            413,
            &format!(
                "The request body is over the server's limit ({MAX_BODY_BYTES} bytes unless \
                 configured otherwise)"
            ),
        );
    });
    let mut metrics = OpenApiRouter::new().routes(routes!(handlers::metrics));
    document_layer(metrics.get_openapi_mut(), |_, responses| {
        // `require_read_token`, unless the metrics are public.
        responses.insert(401, "Missing or wrong token");
    });
    let health = OpenApiRouter::new().routes(routes!(handlers::healthz));
    (guarded, metrics, health)
}

/// The error answers one layer adds to an operation, by status.
struct LayerResponses<'a>(&'a mut Responses);

impl LayerResponses<'_> {
    /// Documents `status` with an [`ErrorBody`](super::ErrorBody), unless
    /// the handler documents it already (more precisely).
    fn insert(&mut self, status: u16, description: &str) {
        self.0
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build()
                    .into()
            });
    }
}

/// Runs `add` on the responses of every operation of `doc`.
fn document_layer(doc: &mut UtoipaOpenApi, add: impl Fn(HttpMethod, &mut LayerResponses<'_>)) {
    for item in doc.paths.paths.values_mut() {
        for (method, op) in [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Delete, &mut item.delete),
            (HttpMethod::Patch, &mut item.patch),
        ] {
            if let Some(op) = op {
                add(method, &mut LayerResponses(&mut op.responses));
            }
        }
    }
}

/// The OpenAPI 3 document of [`router`], generated from the handlers, with
/// the built-in tiers ([`ApiState::openapi`] has a server's own).
pub fn openapi() -> UtoipaOpenApi {
    let (guarded, metrics, health) = routes();
    let mut doc = guarded.merge(metrics).merge(health).into_openapi();
    // The request timeout wraps every route.
    document_layer(&mut doc, |_, responses| {
        responses.insert(503, "Not answered within the request timeout; try again");
    });
    doc
}

/// The admin API, `/metrics`, `/healthz` and the dashboard (`/`) over
/// `state`, with the request timeout, the concurrency limit and the body
/// limit of [`ApiState::limits`].
///
/// Mount it in any axum server (or run it with [`serve`](super::serve),
/// which adds the header-read timeout and the connection cap); run
/// [`ApiState::spawn_alert_sampler`] to get alerts.
///
/// `/healthz` is outside every limit (a liveness probe of a busy server
/// must not queue). Order of the layers on the rest, outermost first: the
/// JSON error bodies for the answers the layers below make, the request
/// timeout (503), the
/// concurrency limit, the hard body cap (`RequestBodyLimitLayer`), then per
/// route the token check (401 and 403, before any of the body is read) and
/// the body reader (413 over [`Limits::max_body_bytes`]).
pub fn router(state: ApiState) -> Router {
    let limits = state.limits;
    let (guarded, metrics, health) = routes();
    let (guarded, _) = guarded.split_for_parts();
    let (metrics, _) = metrics.split_for_parts();
    let (health, _) = health.split_for_parts();
    let guarded = guarded
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    let metrics = if state.public_metrics {
        metrics
    } else {
        metrics.layer(middleware::from_fn_with_state(
            state.clone(),
            require_read_token,
        ))
    };
    let limited = guarded
        .merge(metrics)
        .merge(dashboard::routes())
        .fallback(handlers::fallback)
        .layer(middleware::map_response_with_state(
            state.clone(),
            json_errors,
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(drain_limit(
            limits.max_body_bytes,
        )))
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(middleware::map_response_with_state(
            state.clone(),
            json_errors,
        ));
    // `/healthz` stays outside the concurrency limit and the request
    // timeout: a busy server must still answer its liveness probe.
    health
        .layer(middleware::map_response_with_state(
            state.clone(),
            json_errors,
        ))
        .merge(limited)
        .with_state(state)
}

/// Reads an authorized request's body to its end before the route runs,
/// keeping at most [`Limits::max_body_bytes`] of it (413 past that).
///
/// hyper closes a connection whose request body was left unread, and a
/// client that pooled it, or is still writing the body, then fails with a
/// broken pipe instead of reading the answer. Reading (and past the limit,
/// discarding) the rest first makes a 413 readable; the hard cap of
/// `RequestBodyLimitLayer` stops the discarding at [`drain_limit`].
async fn read_body(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let max = state.limits.max_body_bytes;
    let (parts, mut body) = req.into_parts();
    let mut kept = Vec::new();
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                let over = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit");
                if over {
                    return too_large(max);
                }
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
            seen = seen.saturating_add(data.len());
            if seen <= max {
                kept.extend_from_slice(&data);
            }
        }
    }
    if seen > max {
        return too_large(max);
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

fn too_large(max: usize) -> Response {
    body_too_large(max).into_response()
}

/// The 413 for a body over `max` bytes.
pub(crate) fn body_too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the limit of {max} bytes"),
    )
}

/// Gives the answers that layers make without a body (axum's 405, the body
/// cap's 413, the timeout's 503) the JSON error body every other error has,
/// keeping the `Allow` header.
async fn json_errors(State(state): State<ApiState>, resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    let error = match resp.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method; the Allow header lists those it takes",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => body_too_large(state.limits.max_body_bytes),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request was not answered within the request timeout ({}); try again",
                humantime::format_duration(state.limits.request_timeout)
            ),
        ),
        _ => return resp,
    };
    let mut out = error.into_response();
    if let Some(a) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, a.clone());
    }
    out
}
