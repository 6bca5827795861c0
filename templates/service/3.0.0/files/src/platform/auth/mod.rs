//! JWT bearer authentication: the algorithm is pinned by config; `exp`, `iss`, `aud` and `sub`
//! are required. Handlers take a [`Principal`]; a missing or invalid token is a 401
//! problem+json with `WWW-Authenticate: Bearer`. Every accepted or rejected token is an audit
//! event (see [`crate::platform::audit`]).
//!
//! Managed by the platform. To verify tokens against another key source, implement
//! [`KeySource`] and pass it in `src/app/mod.rs` (`customize`).

pub mod dev_token;
pub mod keys;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

pub use keys::{Hs256Secret, JwksKeySource, KeyError, KeySource};

use crate::platform::audit;
use crate::platform::config::AuthConfig;
use crate::platform::error::{Problem, kinds};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// Every claim of the token (shared: cloning a `Principal` does not copy them).
    pub claims: Arc<Map<String, Value>>,
}

impl Principal {
    /// The token's space-separated `scope` claim contains `scope`; otherwise a 403.
    pub fn require_scope(&self, scope: &str) -> Result<(), Problem> {
        let granted = self
            .claims
            .get("scope")
            .and_then(Value::as_str)
            .is_some_and(|scopes| scopes.split_whitespace().any(|s| s == scope));
        if granted {
            return Ok(());
        }
        let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
        Err(
            Problem::new(kinds::FORBIDDEN, StatusCode::FORBIDDEN, "Forbidden")
                .with_detail(format!("this operation needs the `{scope}` scope"))
                .with_header(header::WWW_AUTHENTICATE, header_value(&challenge)),
        )
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let problem = match &self {
            Self::Missing => Problem::new(
                kinds::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
            )
            .with_detail("a bearer token is required")
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            Self::Invalid(_) => Problem::new(
                kinds::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
            )
            .with_detail("the bearer token is invalid or expired")
            .with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            ),
            Self::KeysUnavailable(_) => {
                Problem::unavailable("token signing keys are unavailable; retry later")
            }
        };
        if !matches!(self, Self::Missing) {
            tracing::info!(reason = %self, "request not authenticated");
        }
        problem.into_response()
    }
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// Verifies bearer tokens.
pub struct Authenticator {
    validation: Validation,
    keys: Arc<dyn KeySource>,
    cache: TokenCache,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("validation", &self.validation)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(config: &AuthConfig, keys: Arc<dyn KeySource>) -> Self {
        let mut validation = Validation::new(config.algorithm.to_jwt());
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.leeway = config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Self {
            validation,
            keys,
            cache: TokenCache::new(Duration::from_secs(config.token_cache_secs)),
        }
    }

    /// Verifies `token` (without the `Bearer ` prefix). A token accepted in the last
    /// `auth.token_cache_secs` is accepted again without checking its signature, until it
    /// expires.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        let now = unix_now();
        if let Some(principal) = self.cache.get(token, now) {
            return Ok(principal);
        }
        let principal = self.verify(token).await?;
        // `exp` is a required claim, so an accepted token has one; the cached entry expires
        // with the same leeway the signature check allows.
        if let Some(exp) = principal.claims.get("exp").and_then(Value::as_u64) {
            self.cache.insert(
                token,
                principal.clone(),
                exp.saturating_add(self.validation.leeway),
                now,
            );
        }
        Ok(principal)
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        // `alg: none` and unknown algorithms fail to parse here.
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self
            .keys
            .key(header.kid.as_deref())
            .await
            .map_err(|error| match error {
                KeyError::Unknown(reason) => AuthError::Invalid(reason),
                KeyError::Unavailable(reason) => AuthError::KeysUnavailable(reason),
            })?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let subject = match data.claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => {
                return Err(AuthError::Invalid(
                    "`sub` must be a non-empty string".to_owned(),
                ));
            }
        };
        // RFC 7519 4.1.1: one issuer, a string. jsonwebtoken also matches an array of issuers
        // against the pinned one; a token naming several issuers is not one this service trusts.
        if !matches!(data.claims.get("iss"), Some(Value::String(_))) {
            return Err(AuthError::Invalid("`iss` must be a string".to_owned()));
        }
        Ok(Principal {
            subject,
            claims: Arc::new(data.claims),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Tokens accepted recently, so that a client sending the same token with every request pays
/// for its signature check once (as Envoy's `jwt_authn` cache does). Only accepted tokens are
/// kept; an entry is used until the token expires (`exp` plus the leeway) or `max_age` has
/// passed since it was checked, whichever comes first. So a token signed by a key that was
/// since removed from the JWKS document is still accepted for at most `max_age`.
struct TokenCache {
    /// Zero: no caching.
    max_age: Duration,
    entries: RwLock<HashMap<Box<str>, CachedToken>>,
}

struct CachedToken {
    principal: Principal,
    /// Unix seconds after which the token is expired.
    valid_until: u64,
    checked_at: Instant,
}

impl CachedToken {
    /// Still usable at `now` (Unix seconds): not expired, and checked less than `max_age` ago.
    fn is_fresh(&self, now: u64, max_age: Duration) -> bool {
        now <= self.valid_until && self.checked_at.elapsed() < max_age
    }
}

impl TokenCache {
    /// At most this many tokens are kept (a few MB at most).
    const CAPACITY: usize = 10_000;

    fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, token: &str, now: u64) -> Option<Principal> {
        if self.max_age.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token)
            .filter(|entry| entry.is_fresh(now, self.max_age))
            .map(|entry| entry.principal.clone())
    }

    fn insert(&self, token: &str, principal: Principal, valid_until: u64, now: u64) {
        if self.max_age.is_zero() || now > valid_until {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, entry| entry.is_fresh(now, self.max_age));
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            CachedToken {
                principal,
                valid_until,
                checked_at: Instant::now(),
            },
        );
    }
}

/// The token of an `Authorization: Bearer …` header: `None` when there is no such header.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, AuthError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            AuthError::Invalid("the Authorization header is not a bearer token".to_owned())
        });
    Some(parsed)
}

/// Middleware over your routes: a valid token becomes a [`Principal`] request extension; an
/// invalid one is answered with 401; a request without a token goes on (the [`Principal`]
/// extractor answers 401 on routes that need one).
pub async fn middleware(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    match bearer(request.headers()) {
        None => next.run(request).await,
        Some(Err(error)) => {
            audit::token_rejected(&request, &error);
            error.into_response()
        }
        Some(Ok(token)) => match auth.authenticate(token).await {
            Ok(principal) => {
                tracing::Span::current().record("enduser.id", principal.subject.as_str());
                audit::token_accepted(&request, &principal);
                request.extensions_mut().insert(principal);
                next.run(request).await
            }
            Err(error) => {
                audit::token_rejected(&request, &error);
                error.into_response()
            }
        },
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(AuthError::Missing)
    }
}

/// `Option<Principal>`: for routes that serve anonymous callers too.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(subject: &str) -> Principal {
        Principal {
            subject: subject.to_owned(),
            claims: Arc::default(),
        }
    }

    #[test]
    fn a_cached_token_is_used_until_it_expires() {
        let cache = TokenCache::new(Duration::from_secs(60));
        cache.insert("token-a", principal("alice"), 1_000, 900);
        assert_eq!(cache.get("token-a", 900), Some(principal("alice")));
        assert_eq!(cache.get("token-a", 1_000), Some(principal("alice")));
        assert_eq!(cache.get("token-a", 1_001), None, "expired");
        assert_eq!(cache.get("token-b", 900), None, "another token");
    }

    #[test]
    fn a_cached_token_is_checked_again_after_max_age() {
        let cache = TokenCache::new(Duration::from_millis(50));
        cache.insert("token-a", principal("alice"), u64::MAX, 0);
        assert!(cache.get("token-a", 0).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("token-a", 0), None);
    }

    #[test]
    fn zero_max_age_caches_nothing_and_expired_tokens_are_not_cached() {
        let off = TokenCache::new(Duration::ZERO);
        off.insert("token-a", principal("alice"), u64::MAX, 0);
        assert_eq!(off.get("token-a", 0), None);

        let cache = TokenCache::new(Duration::from_secs(60));
        cache.insert("token-a", principal("alice"), 99, 100);
        assert_eq!(cache.get("token-a", 0), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for n in 0..TokenCache::CAPACITY + 10 {
            cache.insert(&format!("token-{n}"), principal("alice"), u64::MAX, 0);
        }
        let len = cache.entries.read().unwrap().len();
        assert!(len <= TokenCache::CAPACITY, "{len} entries");
        assert!(
            cache
                .get(&format!("token-{}", TokenCache::CAPACITY + 9), 0)
                .is_some(),
            "the newest token is cached"
        );
    }
}
