//! Bearer tokens: where they come from, their roles, and the constant-time
//! check in front of every guarded route.
//!
//! A server has one or more named tokens ([`Tokens`]), each with a
//! [`Role`]: `admin` may do everything, `read` may only read (`GET` and
//! `HEAD` under `/api` and `/admin`, and `/metrics`). The single admin token
//! of [`Token::resolve`] is the token named `admin`. Every change (any
//! other method) is logged once it is answered, at `info` on the
//! `streambus_tenancy::audit` target, with the token's name, the method,
//! the route, the tenant and the status.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, LOCATION, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::router::ApiState;

/// Shortest token accepted, in bytes.
const MIN_TOKEN_LEN: usize = 16;

/// The secret every `/api` and `/admin` request must present as
/// `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Where [`Token::resolve`] found the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// Given on the command line or in the environment.
    Given,
    /// Read from this file.
    File(PathBuf),
    /// Generated now and written to this file (mode 0600).
    Generated(PathBuf),
}

impl Token {
    /// A token from a string.
    ///
    /// # Errors
    ///
    /// If it is shorter than 16 bytes or has characters outside visible
    /// ASCII (it travels in an HTTP header).
    pub fn new(token: impl Into<String>) -> Result<Token, String> {
        let token = token.into();
        let token = token.trim().to_owned();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the admin token must be at least {MIN_TOKEN_LEN} characters long"
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the admin token may hold only visible ASCII characters".into());
        }
        Ok(Token(token))
    }

    /// A fresh random token: 32 random bytes as 64 hex digits.
    ///
    /// # Errors
    ///
    /// If the operating system has no randomness to give.
    pub fn generate() -> Result<Token, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
        Ok(Token(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The token given (`--token` or `STREAMBUS_TENANCY_TOKEN`), else the one
    /// stored in `file`, else a new one written to `file` with mode 0600.
    ///
    /// # Errors
    ///
    /// If the given or stored token is invalid, or the file cannot be read
    /// or written.
    pub fn resolve(given: Option<String>, file: &Path) -> Result<(Token, TokenSource), String> {
        if let Some(t) = given {
            return Ok((Token::new(t)?, TokenSource::Given));
        }
        match std::fs::read_to_string(file) {
            Ok(s) => {
                let t = Token::new(s).map_err(|e| format!("{}: {e}", file.display()))?;
                return Ok((t, TokenSource::File(file.to_owned())));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        }
        let token = Token::generate()?;
        write_private(file, &token.0)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        Ok((token, TokenSource::Generated(file.to_owned())))
    }

    /// The token itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time independent of where they
    /// differ and of the token's length: the loop runs over `presented` (the
    /// caller's own bytes), reading the token cyclically, and the lengths are
    /// compared without an early return.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let secret = self.0.as_bytes();
        if secret.is_empty() {
            return false;
        }
        let mut same = subtle::Choice::from(u8::from(secret.len() == presented.len()));
        for (i, b) in presented.iter().enumerate() {
            same &= secret[i % secret.len()].ct_eq(b);
        }
        bool::from(same)
    }
}

/// Creates `file` with mode 0600 (owner read/write only) and syncs it.
fn write_private(file: &Path, contents: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(file)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// What a token may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads only: `GET`/`HEAD` routes and `/metrics`.
    Read,
    /// Everything.
    Admin,
}

impl Role {
    /// `"read"` or `"admin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

/// One named token with its role.
#[derive(Clone)]
pub struct NamedToken {
    name: String,
    role: Role,
    token: Token,
}

impl fmt::Debug for NamedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl NamedToken {
    /// The token's name, as the audit log shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it may do.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The secret.
    pub fn token(&self) -> &Token {
        &self.token
    }
}

/// The tokens a server accepts.
///
/// Built from one admin token ([`Tokens::from`]) or read from a tokens file
/// ([`Tokens::load`]), a TOML file of `[[token]]` tables:
///
/// ```toml
/// [[token]]
/// name = "ops"            # shown in the audit log; letters, digits, - and _
/// role = "admin"          # admin | read
/// token = "..."           # at least 16 visible ASCII characters
///
/// [[token]]
/// name = "prometheus"
/// role = "read"
/// token = "..."
/// ```
#[derive(Clone, Debug)]
pub struct Tokens(Vec<NamedToken>);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    token: String,
}

impl From<Token> for Tokens {
    /// One admin token, named `admin`.
    fn from(token: Token) -> Tokens {
        Tokens(vec![NamedToken {
            name: "admin".into(),
            role: Role::Admin,
            token,
        }])
    }
}

impl Tokens {
    /// These tokens.
    ///
    /// # Errors
    ///
    /// If there are none, a name is empty, too long (over 64 bytes) or has
    /// characters other than ASCII letters, digits, `-`, `_` and `.`, or two
    /// tokens share a name or a secret.
    pub fn new(tokens: Vec<(String, Role, Token)>) -> Result<Tokens, String> {
        if tokens.is_empty() {
            return Err("no tokens: give at least one".into());
        }
        let mut out: Vec<NamedToken> = Vec::with_capacity(tokens.len());
        for (name, role, token) in tokens {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(format!(
                    "token name {name:?}: use 1 to 64 ASCII letters, digits, '-', '_' or '.'"
                ));
            }
            if out.iter().any(|t| t.name == name) {
                return Err(format!("token name {name:?} is used twice"));
            }
            if out
                .iter()
                .any(|t| t.token.matches(token.expose().as_bytes()))
            {
                return Err(format!(
                    "token {name:?} has the same secret as another token"
                ));
            }
            out.push(NamedToken { name, role, token });
        }
        Ok(Tokens(out))
    }

    /// Parses a tokens file's text (see the type's docs).
    ///
    /// # Errors
    ///
    /// A message naming the entry that is wrong.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: TokensFile =
            toml::from_str(text).map_err(|e| super::config::toml_error(text, &e))?;
        let mut tokens = Vec::with_capacity(file.token.len());
        for (i, e) in file.token.into_iter().enumerate() {
            let token =
                Token::new(e.token).map_err(|m| format!("token {} ({:?}): {m}", i + 1, e.name))?;
            tokens.push((e.name, e.role, token));
        }
        Tokens::new(tokens)
    }

    /// Reads a tokens file. On Unix it must not be readable by group or
    /// others (mode 0600 or stricter), since it holds secrets.
    ///
    /// # Errors
    ///
    /// A message naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{}: mode {mode:o} lets others read the tokens; chmod 600 it",
                    path.display()
                ));
            }
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The tokens, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &NamedToken> {
        self.0.iter()
    }

    /// The token presented, compared with every token in constant time
    /// (each comparison takes the same time wherever the bytes differ, and
    /// every token is compared whatever matched).
    pub fn find(&self, presented: &[u8]) -> Option<&NamedToken> {
        let mut found = None;
        for t in &self.0 {
            if t.token.matches(presented) {
                found = Some(t);
            }
        }
        found
    }
}

/// Whether `method` on `path` only reads.
fn reads_only(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The token the request carries; 401 if none or a wrong one.
pub(crate) fn check<'a>(
    state: &'a ApiState,
    headers: &HeaderMap,
) -> Result<&'a NamedToken, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing Authorization header; send Authorization: Bearer <token>",
        ));
    };
    let presented = value
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .or_else(|| value.as_bytes().strip_prefix(b"bearer "));
    match presented {
        Some(p) => state
            .tokens
            .find(p)
            .ok_or_else(|| ApiError::unauthorized("wrong token")),
        None => Err(ApiError::unauthorized(
            "the Authorization header must be Bearer <token>",
        )),
    }
}

/// The token the request carries, if it may do what the request asks: 401
/// without a valid token, 403 for a change with a read token.
pub(crate) fn authorize<'a>(
    state: &'a ApiState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<&'a NamedToken, ApiError> {
    let token = check(state, headers)?;
    if token.role == Role::Read && !reads_only(method) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the token {:?} may only read; {method} needs an admin token",
                token.name
            ),
        ));
    }
    Ok(token)
}

/// Whether the request may carry a body that nothing has read yet.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Middleware on the guarded routes: checks the token (before any of the
/// body is read), then runs the route, then writes the audit line of a
/// change.
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let token = match authorize(&state, &method, req.headers()) {
        Ok(t) => t.name.clone(),
        Err(e) => return refuse_unread(e, req.headers()),
    };
    let path = req.uri().path().to_owned();
    if reads_only(&method) {
        return next.run(req).await;
    }
    // Logged when the change is answered, or, if the request is dropped
    // first (the request timeout, or the client went away), with an unknown
    // outcome: the change may still complete on the blocking pool.
    let mut audit = Audit {
        token,
        method,
        path,
        answered: false,
    };
    let resp = next.run(req).await;
    audit.answered = true;
    audit.log(
        &tenant_of(&audit.path, &resp),
        &resp.status().as_u16().to_string(),
    );
    resp
}

/// The audit line of one change.
struct Audit {
    token: String,
    method: Method,
    path: String,
    answered: bool,
}

impl Audit {
    fn log(&self, tenant: &str, status: &str) {
        tracing::info!(
            target: "streambus_tenancy::audit",
            token = %self.token,
            method = %self.method,
            route = %self.path,
            tenant = %tenant,
            status = %status,
            "admin change"
        );
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        if !self.answered {
            let tenant = tenant_of_path(&self.path).unwrap_or_else(|| "-".into());
            self.log(
                &tenant,
                "unknown (not answered: timed out or the client left)",
            );
        }
    }
}

/// Middleware on `/metrics` unless it is public: any valid token.
pub(crate) async fn require_read_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    match check(&state, req.headers()) {
        Ok(_) => next.run(req).await,
        Err(e) => refuse_unread(e, req.headers()),
    }
}

/// Who a token is: its name and role, for a client (the dashboard) that
/// must know whether to offer changes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct WhoAmIJson {
    /// The token's name, as in the audit log.
    name: String,
    /// `admin` or `read`.
    role: String,
}

/// The name and role of the token this request carries.
#[utoipa::path(
    get, path = "/api/v1/whoami", tag = "meta",
    responses(
        (status = 200, description = "The token's name and role", body = WhoAmIJson),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn whoami(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<axum::Json<WhoAmIJson>, ApiError> {
    // `require_token` in front of this route has checked it already.
    let token = check(&state, &headers)?;
    Ok(axum::Json(WhoAmIJson {
        name: token.name.clone(),
        role: token.role.as_str().to_owned(),
    }))
}

/// A refusal sent before the body was read: the connection cannot carry
/// another request, so say so (a pooling client would reuse it otherwise).
fn refuse_unread(e: ApiError, headers: &HeaderMap) -> Response {
    use axum::response::IntoResponse;
    let mut resp = e.into_response();
    if has_body(headers) {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The tenant a change was about: from its route, or from the `Location`
/// of a create.
fn tenant_of(path: &str, resp: &Response) -> String {
    tenant_of_path(path)
        .or_else(|| {
            resp.headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(tenant_of_path)
        })
        .unwrap_or_else(|| "-".into())
}

/// The tenant id in a `/api/v1/tenants/{id}...` or `/admin/tenants/{id}...`
/// route.
fn tenant_of_path(p: &str) -> Option<String> {
    ["/api/v1/tenants/", "/admin/tenants/"]
        .iter()
        .find_map(|prefix| p.strip_prefix(prefix))
        .map(|rest| rest.split('/').next().unwrap_or("").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(Token::new("short").is_err());
        assert!(Token::new("has a space in the middle").is_err());
        let t = Token::new("0123456789abcdef").unwrap();
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeF"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b""));
        // The token repeated, or followed by more, is not the token.
        assert!(!t.matches(b"0123456789abcdef0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdefX"));
        assert_eq!(Token::generate().unwrap().expose().len(), 64);
    }

    #[test]
    fn tokens_file() {
        let t = Tokens::parse(
            r#"
            [[token]]
            name = "ops"
            role = "admin"
            token = "admin-secret-0123456789"
            [[token]]
            name = "prom"
            role = "read"
            token = "read-secret-0123456789"
            "#,
        )
        .unwrap();
        assert_eq!(t.find(b"admin-secret-0123456789").unwrap().name(), "ops");
        assert_eq!(
            t.find(b"read-secret-0123456789").unwrap().role(),
            Role::Read
        );
        assert!(t.find(b"read-secret-012345678").is_none());
        let bad = [
            ("", "no tokens"),
            (
                "[[token]]\nname = \"a\"\nrole = \"root\"\ntoken = \"0123456789abcdef\"",
                "unknown variant",
            ),
            (
                "[[token]]\nname = \"a b\"\nrole = \"read\"\ntoken = \"0123456789abcdef\"",
                "token name",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"read\"\ntoken = \"short\"",
                "at least 16",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"read\"\ntoken = \"0123456789abcdef\"\n\
                 [[token]]\nname = \"a\"\nrole = \"admin\"\ntoken = \"0123456789abcdeX\"",
                "used twice",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"read\"\ntoken = \"0123456789abcdef\"\n\
                 [[token]]\nname = \"b\"\nrole = \"admin\"\ntoken = \"0123456789abcdef\"",
                "same secret",
            ),
        ];
        for (text, needle) in bad {
            let e = Tokens::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        // A typo on a secret's line does not print the secret.
        let e = Tokens::parse(
            "[[token]]\nname = \"a\"\nrole = \"read\"\ntokne = \"s3cret-0123456789\"",
        )
        .unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn resolve_generates_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let (a, src) = Token::resolve(None, &file).unwrap();
        assert_eq!(src, TokenSource::Generated(file.clone()));
        let (b, src) = Token::resolve(None, &file).unwrap();
        assert_eq!(src, TokenSource::File(file.clone()));
        assert_eq!(a.expose(), b.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (c, src) = Token::resolve(Some("given-token-0123456".into()), &file).unwrap();
        assert_eq!(
            (c.expose(), src),
            ("given-token-0123456", TokenSource::Given)
        );
    }
}
