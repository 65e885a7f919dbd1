//! vLLM's runtime adapter endpoints: `POST /v1/load_lora_adapter`
//! `{"lora_name", "lora_path"}` and `POST /v1/unload_lora_adapter` `{"lora_name"}`.
//! They need an API key whenever keys are configured.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::parse_json;
use crate::state::AppState;
use crate::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadRequest {
    lora_name: String,
    lora_path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnloadRequest {
    lora_name: String,
    #[serde(default)]
    #[allow(dead_code)]
    lora_int_id: Option<u64>,
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(
            format!("lora_name `{name}` must be non-empty, without spaces or ':'"),
            Some("lora_name"),
        ));
    }
    Ok(())
}

/// `POST /v1/load_lora_adapter`.
pub async fn load(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let r: Result<Response, ApiError> = async {
        state.auth.authenticate(&headers)?;
        let req: LoadRequest = parse_json(&body)?;
        valid_name(&req.lora_name)?;
        let m = state.model()?;
        if req.lora_name == m.name {
            return Err(ApiError::invalid(
                format!("`{}` is the base model's name", req.lora_name),
                Some("lora_name"),
            ));
        }
        let name = req.lora_name.clone();
        let path = PathBuf::from(&req.lora_path);
        let m2 = Arc::clone(&m);
        tokio::task::spawn_blocking(move || m2.engine.load_adapter_from(&name, &path))
            .await
            .map_err(|e| ApiError::internal(format!("load task failed: {e}")))?
            .map_err(|e| match e {
                hearth_engine::Error::AdapterExists { .. } => {
                    ApiError::invalid(e.to_string(), Some("lora_name"))
                }
                other => ApiError::invalid(other.to_string(), Some("lora_path")),
            })?;
        tracing::info!(adapter = %req.lora_name, "LoRA adapter loaded");
        Ok(Json(serde_json::json!({
            "status": "ok",
            "message": format!("Success: LoRA adapter '{}' added successfully.", req.lora_name),
        }))
        .into_response())
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/unload_lora_adapter`.
pub async fn unload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ApiError> {
        state.auth.authenticate(&headers)?;
        let req: UnloadRequest = parse_json(&body)?;
        let m = state.model()?;
        m.engine
            .unload_adapter(&req.lora_name)
            .map_err(|e| ApiError::from_engine(e, "lora_name"))?;
        tracing::info!(adapter = %req.lora_name, "LoRA adapter unloaded");
        Ok(Json(serde_json::json!({
            "status": "ok",
            "message": format!("Success: LoRA adapter '{}' removed successfully.", req.lora_name),
        }))
        .into_response())
    })();
    r.unwrap_or_else(IntoResponse::into_response)
}
