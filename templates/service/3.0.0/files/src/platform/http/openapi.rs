//! The API contract: an OpenAPI 3.1 document generated from the code (utoipa), served at
//! `GET /openapi.json`, with an interactive Swagger UI at `/docs` in the local profile only.
//!
//! The document holds the platform's routes (`/livez`, `/readyz`, `/metrics`,
//! `/openapi.json`), your routes (annotate each handler with `#[utoipa::path]` and register it
//! with `utoipa_axum::routes!`, see `src/app/items/`), the problem+json error responses every
//! route can give, and the `bearer` security scheme (a JWT in `Authorization: Bearer …`).
//!
//! Managed by the platform.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::platform::Platform;
use crate::platform::error::PROBLEM_JSON;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served (local profile only).
pub const UI_PATH: &str = "/docs";
/// Name of the security scheme; annotate secured operations with `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// An RFC 9457 problem details object, as every error of this service is
/// (`application/problem+json`, see `platform::error`). Kinds may add members (`dependency`,
/// `checks`, …).
#[derive(Debug, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // describes the JSON `Problem::body` writes; never built
pub struct ProblemDoc {
    /// Stable URI of the problem kind, e.g. `urn:problem:platform:not-found`.
    #[schema(rename = "type")]
    kind: String,
    title: String,
    /// The HTTP status code.
    status: u16,
    detail: String,
    /// OpenTelemetry trace id of the request, when traced.
    trace_id: Option<String>,
}

/// `GET /livez` body.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes `health::livez`'s JSON
pub struct Liveness {
    status: String,
}

/// `GET /readyz` body when ready.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes `health::readyz`'s JSON
pub struct Readiness {
    status: String,
    /// One entry per dependency checked.
    checks: std::collections::BTreeMap<String, String>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::platform::http::health::livez,
        crate::platform::http::health::readyz,
        crate::platform::metrics::render,
        serve
    ),
    components(schemas(ProblemDoc, Liveness, Readiness))
)]
struct PlatformApi;

/// The whole contract: the platform's routes merged with `app` (the document of your routes,
/// e.g. from `OpenApiRouter::split_for_parts`), error responses and the bearer scheme added.
pub fn document(app: Document) -> Document {
    let mut doc = PlatformApi::openapi();
    doc.merge(app);
    doc.info.title = env!("CARGO_PKG_NAME").to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(env!("CARGO_PKG_DESCRIPTION").to_owned());
    ErrorResponses.modify(&mut doc);
    doc
}

/// The routes that publish the contract: `/openapi.json`, and the Swagger UI at `/docs` when
/// the profile is `local` (its assets are compiled in: nothing is downloaded to build or view
/// it). Merge them into your router: `router.merge(openapi::routes(platform, api))`.
pub fn routes(platform: &Platform, app: Document) -> Router {
    let body = Serialized(Bytes::from(
        serde_json::to_vec(&document(app)).expect("an OpenAPI document serializes to JSON"),
    ));
    let router = Router::new().route(DOCUMENT_PATH, get(serve).with_state(body));
    if platform.config.profile == "local" {
        router.merge(SwaggerUi::new(UI_PATH).config(Config::new([DOCUMENT_PATH])))
    } else {
        router
    }
}

/// `GET /openapi.json`: this service's API contract.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "platform",
    responses((status = 200, description = "The OpenAPI document of this service", content_type = "application/json", body = Object))
)]
async fn serve(State(Serialized(body)): State<Serialized>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// The document, serialized once at startup.
#[derive(Clone)]
struct Serialized(Bytes);

/// Adds the problem+json error responses to every operation (what the platform's middleware
/// and extractors can answer, so clients and contract tests know them) and the bearer scheme.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A JWT signed with the service's key (`auth` config)"))
                    .build(),
            ),
        );
        let problems = [
            ("400", "Bad input: a malformed body, path or header"),
            ("401", "Missing or invalid bearer token"),
            ("404", "No such resource"),
            ("409", "A request with this Idempotency-Key is in progress"),
            ("413", "The request body is too large"),
            ("415", "The request body is not JSON"),
            ("422", "The request is well-formed but not valid"),
            (
                "500",
                "Unexpected error; quote the trace_id when reporting it",
            ),
            (
                "503",
                "Timed out, shutting down, or a dependency is unavailable",
            ),
        ];
        for (code, description) in problems {
            components
                .responses
                .insert(format!("Problem{code}"), RefOr::T(problem(description)));
        }

        for item in doc.paths.paths.values_mut() {
            let has_path_params = item.parameters.is_some();
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                let has_params =
                    has_path_params || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut codes = vec!["500", "503"];
                if secured {
                    codes.push("401");
                }
                if has_params {
                    codes.extend(["400", "404"]);
                }
                if has_body {
                    codes.push("400");
                }
                if has_body {
                    codes.extend(["409", "413", "415", "422"]);
                }
                codes.sort_unstable();
                codes.dedup();
                for code in codes {
                    operation
                        .responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| {
                            RefOr::Ref(Ref::new(format!("#/components/responses/Problem{code}")))
                        });
                }
            }
        }
    }
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}
