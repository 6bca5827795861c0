//! `dev-token`: mints an HS256 token that the local profile accepts (never in production).
//!
//! Managed by the platform.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use crate::platform::config::{Algorithm, Config};

/// Signs a token for `subject`, valid for `ttl_secs`, with the configured issuer and audience.
pub fn mint(config: &Config, subject: &str, ttl_secs: u64) -> Result<String, String> {
    if config.is_production() {
        return Err(
            "dev-token is for local development; it refuses the production profile".to_owned(),
        );
    }
    if config.auth.algorithm != Algorithm::HS256 {
        return Err(format!(
            "dev-token signs HS256 tokens, but auth.algorithm is {:?}",
            config.auth.algorithm
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let Value::Object(claims) = json!({
        "sub": subject,
        "iss": config.auth.issuer,
        "aud": config.auth.audience,
        "iat": now,
        "exp": now + ttl_secs,
    }) else {
        unreachable!("a JSON object literal")
    };
    sign_hs256(config.auth.hs256_secret.expose_secret(), &claims)
}

/// Signs arbitrary claims with an HS256 secret (tests use it to build bad tokens too).
pub fn sign_hs256(secret: &str, claims: &Map<String, Value>) -> Result<String, String> {
    jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())
}
