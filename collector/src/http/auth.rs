//! Bearer tokens: configured as SHA-256 hashes, compared in constant time; a token has a role
//! and optionally an organization it is confined to.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::AppState;
use crate::config::{Role, TokenConfig, MIN_TOKEN_LEN};

/// A configured token, its hash decoded.
#[derive(Debug, Clone)]
pub struct Token {
    hash: [u8; 32],
    role: Role,
    organization: Option<String>,
}

/// Who is asking: what they may do and which organization they are confined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// May run admin actions (`POST /api/v1/sessions/refresh`).
    pub admin: bool,
    /// `Some(o)`: sees only organization `o`.
    pub organization: Option<String>,
    /// Which configured token (its index), for the per-token stream cap; `None` without
    /// tokens.
    pub token: Option<usize>,
}

impl Principal {
    /// The organization filter to apply: the scope wins; asking for another one is forbidden.
    ///
    /// # Errors
    /// 403 when a scoped token asks for another organization.
    pub fn scope_org(&self, asked: Option<String>) -> Result<Option<String>, ApiError> {
        match (&self.organization, asked) {
            (None, a) => Ok(a),
            (Some(s), Some(a)) if *s != a => Err(ApiError::forbidden(format!(
                "organization: this token is limited to organization {s:?}"
            ))),
            (Some(s), _) => Ok(Some(s.clone())),
        }
    }

    /// Whether a row of organization `org` is visible.
    pub fn sees(&self, org: Option<&str>) -> bool {
        self.organization.as_deref().is_none_or(|s| Some(s) == org)
    }
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equality whose time does not depend on where the inputs differ.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The token list of the configuration (hashes validated by `config`).
pub fn tokens(cfg: &[TokenConfig]) -> Vec<Token> {
    cfg.iter()
        .filter_map(|t| {
            Some(Token {
                hash: unhex(&t.sha256)?,
                role: t.role,
                organization: t.organization.clone(),
            })
        })
        .collect()
}

/// The principal for a presented token. Every configured token is compared (no early exit).
/// With no tokens configured (loopback only), everyone is an unscoped admin.
///
/// # Errors
/// 401 when tokens are configured and `presented` is missing or matches none.
pub fn authenticate(tokens: &[Token], presented: Option<&str>) -> Result<Principal, ApiError> {
    if tokens.is_empty() {
        return Ok(Principal {
            admin: true,
            organization: None,
            token: None,
        });
    }
    let Some(p) = presented.filter(|p| !p.is_empty()) else {
        return Err(ApiError::unauthorized(
            "missing bearer token (Authorization: Bearer TOKEN)",
        ));
    };
    // Whatever hash is configured, a short token never gets in (issue 19: an empty
    // `access_token=` matched a configured hash of the empty string).
    if p.chars().count() < MIN_TOKEN_LEN {
        return Err(ApiError::unauthorized("unknown bearer token"));
    }
    let h: [u8; 32] = Sha256::digest(p.as_bytes()).into();
    let mut found: Option<usize> = None;
    for (i, t) in tokens.iter().enumerate() {
        if ct_eq(&t.hash, &h) && found.is_none() {
            found = Some(i);
        }
    }
    let i = found.ok_or_else(|| ApiError::unauthorized("unknown bearer token"))?;
    let t = &tokens[i];
    Ok(Principal {
        admin: t.role == Role::Admin,
        organization: t.organization.clone(),
        token: Some(i),
    })
}

/// The token of a request: `Authorization: Bearer T`, else the `access_token` query parameter
/// (for `EventSource` and download links, which cannot set headers).
fn presented(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, tok) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| tok.trim().to_owned());
    }
    let q = parts.uri.query()?;
    super::params::pairs(q)
        .into_iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&state.tokens, presented(parts).as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tok: &str, role: Role, org: Option<&str>) -> TokenConfig {
        let h = Sha256::digest(tok.as_bytes());
        TokenConfig {
            sha256: h.iter().map(|b| format!("{b:02x}")).collect(),
            role,
            organization: org.map(str::to_owned),
        }
    }

    #[test]
    fn roles_scopes_and_unknown_tokens() {
        let (rt, at) = ("reader-0123456789abcdef", "admin-0123456789abcdef");
        let t = tokens(&[
            cfg(rt, Role::Read, Some("acme")),
            cfg(at, Role::Admin, None),
            cfg("", Role::Admin, None),
            cfg("short", Role::Admin, None),
        ]);
        let r = authenticate(&t, Some(rt)).unwrap();
        assert!(!r.admin);
        assert_eq!(r.organization.as_deref(), Some("acme"));
        assert_eq!(r.token, Some(0));
        assert!(authenticate(&t, Some(at)).unwrap().admin);
        // Even with their hashes configured, empty and short tokens never get in.
        assert!(authenticate(&t, Some("")).is_err());
        assert!(authenticate(&t, Some("short")).is_err());
        assert_eq!(
            authenticate(&t, Some("x")).unwrap_err().status,
            axum::http::StatusCode::UNAUTHORIZED
        );
        assert!(authenticate(&t, None).is_err());
        assert!(authenticate(&[], None).unwrap().admin);
        assert!(r.scope_org(Some("other".into())).is_err());
        assert_eq!(r.scope_org(None).unwrap().as_deref(), Some("acme"));
        assert!(r.sees(Some("acme")) && !r.sees(Some("other")) && !r.sees(None));
    }
}
