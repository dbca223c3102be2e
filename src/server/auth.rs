//! The admin bearer token: where it comes from, and its constant-time check.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
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
    /// differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented))
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

/// Whether the request carries the token; 401 if not.
pub(crate) fn check(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
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
        Some(p) if state.token.matches(p) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("wrong token")),
        None => Err(ApiError::unauthorized(
            "the Authorization header must be Bearer <token>",
        )),
    }
}

/// Middleware: refuse with 401 unless the request carries the token.
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check(&state, req.headers())?;
    Ok(next.run(req).await)
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
        assert_eq!(Token::generate().unwrap().expose().len(), 64);
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
