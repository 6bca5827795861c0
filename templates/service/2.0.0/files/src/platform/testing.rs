//! Test support: build the whole service in process (memory idempotency store, HS256 auth,
//! telemetry without export) and drive it with `tower::ServiceExt::oneshot`.
//!
//! Managed by the platform.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use tower::Service;

use crate::platform::auth::dev_token;
use crate::platform::config::{Config, Layers};
use crate::platform::idempotency::MemoryStore;
use crate::platform::server::App;
use crate::platform::{Platform, PlatformBuilder};

static TELEMETRY: Once = Once::new();

/// Installs a global subscriber (JSON logs to the test output, spans with ids but no export),
/// so trace ids exist in tests as they do in production.
pub fn init_telemetry() {
    TELEMETRY.call_once(|| {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = crate::platform::telemetry::subscriber(
            provider,
            tracing_subscriber::fmt::TestWriter::new(),
            crate::platform::telemetry::logging::filter_from_env(),
        );
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Config layers for tests: the shipped defaults plus `overrides` (TOML).
pub fn layers(overrides: &str) -> Layers {
    Layers::from_toml(overrides)
}

/// The service under test.
#[derive(Clone, Debug)]
pub struct TestApp {
    pub router: Router,
    pub platform: Platform,
    pub config: Arc<Config>,
    pub store: Arc<MemoryStore>,
}

impl TestApp {
    /// The platform around `routes`, with default test config.
    pub async fn with_routes(routes: Router) -> Self {
        Self::build(layers(""), |b| b, |_| Ok(routes)).await
    }

    /// Your whole application, as `main` builds it.
    pub async fn for_app(app: App, layers: Layers) -> Self {
        Self::build(layers, app.customize, app.routes).await
    }

    /// Full control: config layers, extension points, routes.
    pub async fn build(
        layers: Layers,
        customize: impl FnOnce(PlatformBuilder) -> PlatformBuilder,
        routes: impl FnOnce(&Platform) -> Result<Router, crate::platform::BoxError>,
    ) -> Self {
        init_telemetry();
        let config = layers.platform().expect("test config is valid");
        let store = Arc::new(MemoryStore::new());
        let builder = PlatformBuilder::new(config, layers).with_idempotency_store(store.clone());
        let platform = customize(builder).build().await.expect("platform builds");
        let routes = routes(&platform).expect("routes build");
        let router = crate::platform::http::router(&platform, routes);
        Self {
            router,
            config: platform.config.clone(),
            platform,
            store,
        }
    }

    /// Sends one request through the full stack.
    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        let mut router = self.router.clone();
        match router.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// A valid token for `subject`.
    pub fn token(&self, subject: &str) -> String {
        self.token_with(self.claims(subject, 300))
    }

    /// Valid claims for `subject`, expiring in `ttl_secs` (negative: already expired).
    pub fn claims(&self, subject: &str, ttl_secs: i64) -> Map<String, Value> {
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        )
        .unwrap_or(0);
        let Value::Object(claims) = json!({
            "sub": subject,
            "iss": self.config.auth.issuer,
            "aud": self.config.auth.audience,
            "iat": now,
            "exp": now + ttl_secs,
        }) else {
            unreachable!("a JSON object literal")
        };
        claims
    }

    /// A token with these claims, signed with the configured HS256 secret.
    pub fn token_with(&self, claims: Map<String, Value>) -> String {
        dev_token::sign_hs256(self.config.auth.hs256_secret.expose_secret(), &claims)
            .expect("token signs")
    }
}

/// Reads a response body as JSON.
pub async fn json_body(response: Response<Body>) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body reads");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A log sink for tests that inspect log lines.
#[derive(Clone, Debug, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Every captured line, parsed as JSON.
    pub fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
