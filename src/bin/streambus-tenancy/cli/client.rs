//! The admin API's HTTP client: the server URL (`http://` or `https://`),
//! the token, and one call per request, decoded to JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use streambus_tenancy::server::{ErrorBody, DEFAULT_DATA_DIR};

pub(super) const DEFAULT_SERVER: &str = "http://127.0.0.1:7420";

/// Where the token comes from, in this order: `--token` (warned about: it is
/// visible in `ps`), `--token-file`, `STREAMBUS_TENANCY_TOKEN`, the default
/// token file.
pub(super) struct TokenArgs<'a> {
    pub(super) token: Option<&'a str>,
    pub(super) token_file: Option<&'a Path>,
}

pub(super) struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

/// A decoded answer: status and JSON body (`Null` for an empty body).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Value,
}

/// The server URL without a trailing `/`, if it is `http://` or `https://`.
pub(super) fn server_url(url: &str) -> Result<String, String> {
    let base = url.trim().trim_end_matches('/');
    match base.split_once("://") {
        Some((scheme, host))
            if !host.is_empty()
                && (scheme.eq_ignore_ascii_case("http")
                    || scheme.eq_ignore_ascii_case("https")) =>
        {
            Ok(base.to_owned())
        }
        _ => Err(format!(
            "--server must be an http:// or https:// URL such as {DEFAULT_SERVER}, got {url:?}"
        )),
    }
}

fn token(args: &TokenArgs<'_>) -> Result<String, String> {
    if let Some(t) = args.token {
        eprintln!(
            "warning: a token given with --token is visible to other users of this machine \
             (ps, /proc); set STREAMBUS_TENANCY_TOKEN or use --token-file instead"
        );
        return non_empty(t.to_owned(), "--token");
    }
    if let Some(file) = args.token_file {
        return read_token(file);
    }
    if let Ok(t) = std::env::var("STREAMBUS_TENANCY_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_owned());
        }
    }
    let file = PathBuf::from(DEFAULT_DATA_DIR).join("token");
    read_token(&file).map_err(|e| {
        format!(
            "no admin token: set STREAMBUS_TENANCY_TOKEN, or point --token-file at the \
             server's token file ({e})"
        )
    })
}

fn read_token(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the token file {}: {e}", file.display()))?;
    non_empty(text, &format!("the token file {}", file.display()))
}

fn non_empty(token: String, from: &str) -> Result<String, String> {
    let token = token.trim();
    if token.is_empty() {
        return Err(format!("{from} holds an empty token"));
    }
    Ok(token.to_owned())
}

impl Client {
    /// A client of `server` (else `STREAMBUS_TENANCY_URL`, else
    /// [`DEFAULT_SERVER`]) with the admin token.
    pub(super) fn new(server: Option<&str>, tokens: &TokenArgs<'_>) -> Result<Client, String> {
        let url = server
            .map(str::to_owned)
            .or_else(|| std::env::var("STREAMBUS_TENANCY_URL").ok())
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let base = server_url(&url)?;
        let token = token(tokens)?;
        // TLS for https:// is rustls with the Mozilla roots (webpki-roots).
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base,
            auth: format!("Bearer {token}"),
        })
    }

    /// One request; `Err` with the server's message for a non-2xx answer.
    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &self.auth)
                .call(),
            ("POST", None) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .send_empty(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(b.to_string()),
            ("PUT", b) => self
                .agent
                .put(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(&Value::Null).to_string()),
            _ => unreachable!("the client only uses GET, POST, PUT and DELETE"),
        };
        let mut resp = result.map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| format!("cannot read the answer from {}: {e}", self.base))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("the server answered {status} with non-JSON ({e}): {text}"))?
        };
        if (200..300).contains(&status) {
            Ok(Answer { status, body })
        } else {
            let msg = match serde_json::from_value::<ErrorBody>(body) {
                Ok(e) => format!("{} (HTTP {status}, {})", e.error, e.code),
                Err(_) => format!("HTTP {status}"),
            };
            Err(msg)
        }
    }
}

/// An id percent-encoded for a path segment or a query value.
pub(super) fn encode(id: &str) -> String {
    let mut enc = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    enc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(
            server_url("http://127.0.0.1:7420/").unwrap(),
            "http://127.0.0.1:7420"
        );
        assert_eq!(
            server_url("https://tenancy.example:8443").unwrap(),
            "https://tenancy.example:8443"
        );
        assert_eq!(server_url("HTTPS://h").unwrap(), "HTTPS://h");
        for bad in ["127.0.0.1:7420", "ftp://h", "http://", "https:/h", "", "h"] {
            let e = server_url(bad).unwrap_err();
            assert!(e.contains("http:// or https://"), "{bad}: {e}");
        }
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("acme.corp_1-a"), "acme.corp_1-a");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
