//! llama.cpp's native `POST /completion` (also `/completions`): `{"prompt", "n_predict"}`
//! → `{"content", ...}`, so clients and tests written for llama-server work unchanged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::parse_json;
use crate::params::{self, SamplingFields};
use crate::run;
use crate::state::AppState;
use crate::ApiError;

/// The fields of llama.cpp's request that we honour.
#[derive(Debug, Deserialize)]
struct NativeRequest {
    prompt: NativePrompt,
    #[serde(default)]
    n_predict: Option<i64>,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_k: Option<i64>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    min_p: Option<f32>,
    #[serde(default)]
    repeat_penalty: Option<f32>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Vec<String>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    ignore_eos: Option<bool>,
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NativePrompt {
    Text(String),
    Tokens(Vec<u32>),
}

/// The handler.
pub async fn completion(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let caller = state.auth.authenticate(&headers)?;
        let policy = caller.policy;
        let req: NativeRequest = parse_json(&body)?;
        let m = state.model()?;
        params::check_extra(&req.extra)?;
        if req.stream.unwrap_or(false) {
            return Err(ApiError::unsupported(
                "stream",
                "stream with POST /v1/completions (OpenAI format) instead",
            ));
        }
        let prompt = match &req.prompt {
            NativePrompt::Tokens(ids) if policy.input == crate::InputPolicy::Off => ids.clone(),
            p => {
                let text = match p {
                    NativePrompt::Text(t) => t.clone(),
                    NativePrompt::Tokens(ids) => m.tokenizer.decode(ids, false),
                };
                let mut texts = vec![text];
                state
                    .guard
                    .check_input(policy.input, &mut texts, "prompt")?;
                m.tokenizer
                    .encode(&texts[0], true, true)
                    .map_err(|e| ApiError::invalid(e.to_string(), Some("prompt")))?
            }
        };
        let room = m.context_length.saturating_sub(prompt.len());
        let max_tokens = match req.n_predict.or(req.max_tokens) {
            None | Some(-1) => room.min(256),
            v => params::max_tokens(v, "n_predict", room)?,
        };
        let fields = SamplingFields {
            temperature: Some(req.temperature.unwrap_or(0.8)),
            top_k: Some(req.top_k.unwrap_or(40)),
            top_p: Some(req.top_p.unwrap_or(0.95)),
            min_p: Some(req.min_p.unwrap_or(0.05)),
            repetition_penalty: req.repeat_penalty,
            seed: req.seed.filter(|s| *s >= 0),
            stop: req.stop.clone(),
            ignore_eos: req.ignore_eos,
            ..SamplingFields::default()
        };
        let gen = params::generate_params(&fields, max_tokens, None)?;
        state.auth.admit(&caller)?;
        let id = state.request_id("cmpl");
        let (c, usage) = run::complete_one(&state, &m, caller, &id, prompt, &gen).await?;
        let stop_type = match c.finish_reason {
            _ if c.content_filtered => "content_filter",
            Some(hearth_engine::FinishReason::Stop) => "eos",
            _ => "limit",
        };
        Ok(Json(serde_json::json!({
            "content": c.text,
            "tokens": c.ids,
            "model": m.name,
            "stop": true,
            "stop_type": stop_type,
            "tokens_predicted": c.ids.len(),
            "tokens_evaluated": usage.prompt_tokens,
            "tokens_cached": usage.cached_tokens.load(std::sync::atomic::Ordering::Relaxed),
            "truncated": false,
        }))
        .into_response())
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}
