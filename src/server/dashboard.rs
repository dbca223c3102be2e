//! The web dashboard: one HTML page, its script and its stylesheet,
//! embedded in the binary and served by [`router`](super::router) without a
//! token.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the page |
//! | `GET /ui/app.js` | its script |
//! | `GET /ui/app.css` | its stylesheet |
//!
//! The page holds no data: the script asks for a token, keeps it in the
//! tab's `sessionStorage`, and reads everything from the admin API with
//! `Authorization: Bearer`, so the token decides what the page shows and
//! may change (a `read` token gets no action buttons, and the API refuses
//! the changes anyway). There are no cookies, so there is nothing for a
//! cross-site request to ride on.
//!
//! Every answer carries a Content-Security-Policy that allows scripts,
//! styles and requests from this origin only (no inline script, no `eval`,
//! no framing), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::router::ApiState;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");

/// The policy on every dashboard answer.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes, for [`router`](super::router) to merge.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

/// One embedded file with the dashboard's headers. `no-cache` makes a
/// browser check again after an upgrade of the server.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}
