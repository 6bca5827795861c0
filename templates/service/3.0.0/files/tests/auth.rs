//! JWT bearer rules: what is accepted, what is a 401, and the JWKS key source.
//!
//! Managed by the platform.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use {{ crate_name }} as service;

use service::platform::auth::{JwksKeySource, KeyError, KeySource, Principal};
use service::platform::testing::{TestApp, json_body, layers};

async fn app() -> TestApp {
    TestApp::with_routes(Router::new().route(
        "/me",
        get(|principal: Principal| async move { principal.subject }),
    ))
    .await
}

fn me(token: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/me");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

async fn assert_invalid_token(app: &TestApp, token: &str) {
    let response = app.send(me(Some(token))).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "token {token}");
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(json_body(response).await["status"], 401);
}

#[tokio::test]
async fn valid_token_yields_the_principal() {
    let app = app().await;
    let response = app.send(me(Some(&app.token("alice")))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"alice");
}

#[tokio::test]
async fn missing_token_is_401_with_bearer_challenge() {
    let app = app().await;
    let response = app.send(me(None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let body = json_body(response).await;
    assert_eq!(body["type"], "urn:problem:platform:unauthorized");
}

#[tokio::test]
async fn non_bearer_authorization_is_401() {
    let app = app().await;
    let request = Request::get("/me")
        .header(header::AUTHORIZATION, "Basic YWxpY2U6c2VjcmV0")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = app().await;
    assert_invalid_token(&app, &app.token_with(app.claims("alice", -3600))).await;
}

#[tokio::test]
async fn a_token_accepted_before_is_refused_once_it_expires() {
    // Accepted tokens are cached (`auth.token_cache_secs`), never past their `exp`.
    let app = TestApp::build(
        layers("[auth]\nleeway_secs = 0\ntoken_cache_secs = 60\n"),
        |builder| builder,
        |_| {
            Ok(Router::new().route(
                "/me",
                get(|principal: Principal| async move { principal.subject }),
            ))
        },
    )
    .await;
    let token = app.token_with(app.claims("alice", 1));
    assert_eq!(app.send(me(Some(&token))).await.status(), StatusCode::OK);
    assert_eq!(app.send(me(Some(&token))).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_invalid_token(&app, &token).await;
}

#[tokio::test]
async fn wrong_audience_is_401() {
    let app = app().await;
    let mut claims = app.claims("alice", 300);
    claims.insert("aud".into(), json!("someone-else"));
    assert_invalid_token(&app, &app.token_with(claims)).await;
}

#[tokio::test]
async fn wrong_issuer_is_401() {
    let app = app().await;
    let mut claims = app.claims("alice", 300);
    claims.insert("iss".into(), json!("https://evil.example"));
    assert_invalid_token(&app, &app.token_with(claims)).await;
}

#[tokio::test]
async fn missing_required_claims_are_401() {
    let app = app().await;
    for claim in ["exp", "iss", "aud", "sub"] {
        let mut claims = app.claims("alice", 300);
        claims.remove(claim);
        assert_invalid_token(&app, &app.token_with(claims)).await;
    }
}

#[tokio::test]
async fn other_algorithm_with_the_same_secret_is_401() {
    let app = app().await;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS384),
        &app.claims("alice", 300),
        &EncodingKey::from_secret(app.config.auth.hs256_secret.expose_secret().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_invalid_token(&app, &token).await;
}

fn b64(value: &Value) -> String {
    use std::fmt::Write;
    // base64url without padding, written out to avoid a test-only dependency.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = value.to_string().into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            let _ = out.write_char(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn alg_none_is_401() {
    let app = app().await;
    let header = json!({ "alg": "none", "typ": "JWT" });
    let claims = Value::Object(app.claims("alice", 300));
    assert_invalid_token(&app, &format!("{}.{}.", b64(&header), b64(&claims))).await;
}

#[tokio::test]
async fn registered_claims_of_the_wrong_json_type_are_401() {
    // Claim-type confusion: `sub`, `iss` and `aud` are strings (`aud` also an array of
    // strings); a token carrying another JSON type there is refused, even when a loose reading
    // of the value would match (`["orders"]` nested, `{"iss": …}` objects, numbers).
    let app = app().await;
    let issuer = app.config.auth.issuer.clone();
    let audience = app.config.auth.audience.clone();
    for (claim, value) in [
        ("sub", json!(42)),
        ("sub", json!(["alice"])),
        ("sub", json!({ "id": "alice" })),
        ("iss", json!([issuer])),
        ("iss", json!({ "iss": issuer })),
        ("iss", json!(7)),
        ("aud", json!([[audience]])),
        ("aud", json!({ "aud": audience })),
        ("aud", json!(true)),
    ] {
        let mut claims = app.claims("alice", 300);
        claims.insert(claim.into(), value.clone());
        let token = app.token_with(claims);
        let response = app.send(me(Some(&token))).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "`{claim}`: {value} must be refused"
        );
    }
}

#[tokio::test]
async fn an_unknown_critical_header_is_401() {
    // RFC 7515 4.1.11: a token whose `crit` header names an extension the verifier does not
    // understand must be refused, whatever its signature.
    let app = app().await;
    let secret = app.config.auth.hs256_secret.expose_secret().as_bytes();
    let signed = |crit: Vec<String>| {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(crit);
        jsonwebtoken::encode(
            &header,
            &app.claims("alice", 300),
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    };
    assert_invalid_token(&app, &signed(vec!["x-unknown-extension".into()])).await;
    assert_invalid_token(&app, &signed(vec![])).await;
    // The same token without `crit` is accepted: the header alone made the difference.
    let plain = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &app.claims("alice", 300),
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap();
    assert_eq!(app.send(me(Some(&plain))).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn tampered_signature_or_payload_is_401() {
    let app = app().await;
    let token = app.token("alice");
    let (rest, signature) = token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    assert_invalid_token(&app, &format!("{rest}.{flipped}{}", &signature[1..])).await;

    let (header, _) = rest.split_once('.').unwrap();
    let forged = b64(&Value::Object(app.claims("mallory", 300)));
    assert_invalid_token(&app, &format!("{header}.{forged}.{signature}")).await;
}

#[tokio::test]
async fn garbage_token_is_401() {
    let app = app().await;
    assert_invalid_token(&app, "not-a-jwt").await;
}

// --- JWKS key source ---------------------------------------------------------------------

const EC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0Bw6WB+JqnJFvN6e
RI0bW6wWPYkJPrN61pugelnw0HChRANCAAQf0K5Edp7jfxk6RxW6ap0eMjd6qo6Y
XA3PTtx46Ijxxx3V1qr9x4TMJhhrMqTzz0+IUf/oPtgnFBj0tJZL3SRK
-----END PRIVATE KEY-----
";

fn jwks(kid: &str) -> Value {
    json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": "H9CuRHae438ZOkcVumqdHjI3eqqOmFwNz07ceOiI8cc",
        "y": "HdXWqv3HhMwmGGsypPPPT4hR_-g-2CcUGPS0lkvdJEo",
    }]})
}

/// Serves a JWKS document on loopback; `kid` and availability can change during the test.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    state: Arc<std::sync::Mutex<Option<String>>>,
}

async fn jwks_server(kid: &str) -> JwksServer {
    let fetches = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(std::sync::Mutex::new(Some(kid.to_owned())));
    let (counter, current) = (fetches.clone(), state.clone());
    let router = Router::new().route(
        "/jwks.json",
        get(move || {
            let (counter, current) = (counter.clone(), current.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                match current.lock().unwrap().clone() {
                    Some(kid) => Ok(axum::Json(jwks(&kid))),
                    None => Err(StatusCode::SERVICE_UNAVAILABLE),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    JwksServer {
        url,
        fetches,
        state,
    }
}

fn es256_token(app: &TestApp, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &app.claims("carol", 300), &key).unwrap()
}

#[tokio::test]
async fn jwks_source_verifies_es256_and_refetches_unknown_kid_once_per_cooldown() {
    let server = jwks_server("key-1").await;
    let overrides = format!(
        "[auth]\nalgorithm = \"ES256\"\njwks_url = \"{}\"\njwks_refresh_cooldown_secs = 3600\n",
        server.url
    );
    let app = TestApp::build(
        layers(&overrides),
        |b| b,
        |_| Ok(Router::new().route("/me", get(|p: Principal| async move { p.subject }))),
    )
    .await;
    let warm = server.fetches.load(Ordering::SeqCst);
    assert_eq!(warm, 1, "keys are fetched at startup");

    assert_eq!(
        app.send(me(Some(&es256_token(&app, "key-1"))))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "a known kid is served from the cache"
    );

    // HS256 tokens are refused when ES256 is pinned.
    assert_eq!(
        app.send(me(Some(&app.token("alice")))).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // An unknown kid inside the cooldown does not refetch.
    assert_eq!(
        app.send(me(Some(&es256_token(&app, "key-2"))))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "no fetch within the cooldown"
    );
}

#[tokio::test]
async fn jwks_source_picks_up_a_rotated_key_and_keeps_last_good_keys_on_failure() {
    let server = jwks_server("key-1").await;
    let source = JwksKeySource::new(server.url.clone(), Duration::ZERO).unwrap();
    assert!(source.key(Some("key-1")).await.is_ok(), "first use fetches");

    // Rotation: the issuer now publishes key-2; an unknown kid triggers a refetch.
    *server.state.lock().unwrap() = Some("key-2".to_owned());
    assert!(source.key(Some("key-2")).await.is_ok());
    assert!(
        matches!(source.key(Some("key-1")).await, Err(KeyError::Unknown(_))),
        "rotated-out key is gone"
    );

    // The issuer goes down: the last good keys keep working.
    *server.state.lock().unwrap() = None;
    assert!(source.key(Some("key-3")).await.is_err());
    assert!(
        source.key(Some("key-2")).await.is_ok(),
        "last good keys are kept"
    );
}
