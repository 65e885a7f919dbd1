//! `hearth serve`: an OpenAI-compatible HTTP server over the engine.
//!
//! Routes (also without the `/v1` prefix, as llama-server answers them):
//! `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`,
//! `POST /tokenize`, `POST /detokenize`, `POST /generate`, llama.cpp's native
//! `POST /completion`, `GET /health` (503 until the model is loaded), `GET /metrics`
//! (Prometheus text, vLLM names), `GET /openapi.json`, and the chat page at `/`.
//!
//! Errors come in OpenAI's shape; API keys (flags, a file, or the SQLite store that
//! `hearth keys` manages) gate everything but health, metrics and the page; usage is
//! recorded per key and day so daily token budgets survive restarts.

mod auth;
mod error;
pub mod guard;
mod params;
mod routes;
mod run;
pub mod state;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use auth::{Auth, Caller};
pub use error::ApiError;
pub use guard::{GuardPolicy, InputPolicy, OutputPolicy};
pub use state::{AppState, CorsOrigins, ServedModel, ServerOptions};
pub use store::{KeyInfo, KeyLimits, Store, StoreError};

/// `system_fingerprint` of our answers.
pub const FINGERPRINT: &str = concat!("hearth-", env!("CARGO_PKG_VERSION"));

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// The application's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    use routes::*;
    let api = Router::new()
        .route("/chat/completions", post(chat::create))
        .route("/completions", post(completions::create))
        .route("/models", get(simple::models))
        .route("/moderations", post(moderations::create))
        .route("/load_lora_adapter", post(lora::load))
        .route("/unload_lora_adapter", post(lora::unload));
    Router::new()
        .nest("/v1", api)
        .route("/chat/completions", post(chat::create))
        .route("/completions", post(llama::completion))
        .route("/completion", post(llama::completion))
        .route("/models", get(simple::models))
        .route("/moderations", post(moderations::create))
        .route("/tokenize", post(simple::tokenize))
        .route("/detokenize", post(simple::detokenize))
        .route("/generate", post(simple::generate))
        .route("/health", get(simple::health))
        .route("/v1/health", get(simple::health))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(simple::openapi))
        .route("/", get(simple::page))
        .route("/sw.js", get(simple::service_worker))
        .route("/manifest.webmanifest", get(simple::manifest))
        .route("/_app/version.json", get(simple::version))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), edge))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    let mut e = ApiError::invalid(
        format!("no route for {} {}", req.method(), req.uri().path()),
        None,
    );
    e.status = StatusCode::NOT_FOUND;
    e.code = Some("not_found");
    e.into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let mut e = ApiError::invalid(
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
        None,
    );
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e.code = Some("method_not_allowed");
    e.into_response()
}

/// Outermost layer: CORS (answers preflights itself), request ids, status counts, and
/// rewrapping axum's own rejections (body too large...) as OpenAI errors.
async fn edge(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let allowed = origin.filter(|o| state.options.cors.allows(o));
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        let r = next.run(req).await;
        rewrap(r).await
    };
    state.count_response(resp.status().as_u16());
    let h = resp.headers_mut();
    if let Some(o) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("*"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

/// axum answers some client errors itself in plain text (413, 415, 422...); give
/// those OpenAI's error shape.
async fn rewrap(r: Response) -> Response {
    let status = r.status();
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return r;
    }
    let retry = r.headers().get(header::RETRY_AFTER).cloned();
    let text = match axum::body::to_bytes(r.into_body(), 64 << 10).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let mut e = ApiError::invalid(
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        },
        None,
    );
    e.status = status;
    if status.is_server_error() {
        e.kind = "server_error";
    }
    let mut resp = e.into_response();
    if let Some(v) = retry {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Serves `router(state)` on `listener` until `shutdown` resolves; then stops taking
/// requests, lets in-flight ones finish for up to `grace`, and returns.
///
/// HTTP/1.1 with title-case header names on the wire (`Access-Control-Allow-Origin`), as
/// llama-server and most servers write them: some clients compare names case-sensitively.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let app = router(Arc::clone(&state));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let conn = hyper::server::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new requests; waiting up to {grace:?} for in-flight ones");
    state.start_draining();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; abandoning requests still running");
    }
    Ok(())
}
