//! Health, models, tokenize / detokenize, the seed's `/generate`, and static assets.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_api::{
    DetokenizeRequest, DetokenizeResponse, GenerateRequest, GenerateResponse, MessageContent,
    ModelCard, ModelList, TokenPiece, TokenizeRequest, TokenizeResponse,
};
use hearth_tokenizer::chat::ChatMessage;

use super::{parse_json, token_text};
use crate::params::{self, SamplingFields};
use crate::run;
use crate::state::AppState;
use crate::ApiError;

fn answer(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /health`: 200 once the model is loaded, 503 before (and while draining).
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.model() {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": e.body().error})),
        )
            .into_response(),
    }
}

/// `GET /v1/models`.
pub async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    answer((|| {
        state.auth.authenticate(&headers)?;
        let m = state.model()?;
        let card = |id: String, parent: Option<String>| ModelCard {
            id,
            object: "model".into(),
            created: m.created,
            owned_by: "hearth".into(),
            max_model_len: m.context_length,
            parent,
        };
        let mut data = vec![card(m.name.clone(), None)];
        data.extend(
            m.engine
                .adapter_names()
                .into_iter()
                .map(|a| card(a, Some(m.name.clone()))),
        );
        Ok(Json(ModelList {
            object: "list".into(),
            data,
        })
        .into_response())
    })())
}

/// `POST /tokenize`.
pub async fn tokenize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| {
        state.auth.authenticate(&headers)?;
        let req: TokenizeRequest = parse_json(&body)?;
        let m = state.model()?;
        let add_special = req.add_special.or(req.add_special_tokens).unwrap_or(true);
        let ids = match (&req.content, &req.prompt, &req.messages) {
            (Some(t), None, None) | (None, Some(t), None) => m
                .tokenizer
                .encode(t, add_special, true)
                .map_err(|e| ApiError::invalid(e.to_string(), Some("content")))?,
            (None, None, Some(msgs)) => {
                let mut conv = Vec::new();
                for (i, msg) in msgs.iter().enumerate() {
                    let text = match &msg.content {
                        Some(MessageContent::Text(t)) => t.clone(),
                        None => String::new(),
                        Some(MessageContent::Parts(p)) => p
                            .iter()
                            .map(|p| {
                                p.text.clone().ok_or_else(|| {
                                    ApiError::invalid(
                                        "only text parts",
                                        Some(&format!("messages[{i}].content")),
                                    )
                                })
                            })
                            .collect::<Result<String, _>>()?,
                    };
                    conv.push(ChatMessage::new(msg.role.clone(), text));
                }
                let r = m
                    .template
                    .render(&conv, req.add_generation_prompt.unwrap_or(true))
                    .map_err(|e| ApiError::invalid(e.to_string(), Some("messages")))?;
                m.tokenizer
                    .encode_chat(&r)
                    .map_err(|e| ApiError::invalid(e.to_string(), Some("messages")))?
            }
            _ => {
                return Err(ApiError::invalid(
                    "send exactly one of 'content', 'prompt' or 'messages'",
                    Some("content"),
                ))
            }
        };
        let tokens = if req.with_pieces.unwrap_or(false) {
            serde_json::to_value(
                ids.iter()
                    .map(|&id| TokenPiece {
                        id,
                        piece: token_text(&m.tokenizer, id).0,
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            serde_json::to_value(&ids)
        }
        .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Json(TokenizeResponse {
            tokens,
            count: ids.len(),
            max_model_len: m.context_length,
        })
        .into_response())
    })())
}

/// `POST /detokenize`.
pub async fn detokenize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| {
        state.auth.authenticate(&headers)?;
        let req: DetokenizeRequest = parse_json(&body)?;
        let m = state.model()?;
        let vocab = m.tokenizer.vocab_size() as u32;
        if let Some(bad) = req.tokens.iter().find(|&&t| t >= vocab) {
            return Err(ApiError::invalid(
                format!("token id {bad} is outside the vocabulary (size {vocab})"),
                Some("tokens"),
            ));
        }
        let text = m.tokenizer.decode(&req.tokens, false);
        Ok(Json(DetokenizeResponse {
            content: text.clone(),
            prompt: text,
        })
        .into_response())
    })())
}

/// `POST /generate`: `{"prompt", "max_tokens"}` → `{"text"}`.
pub async fn generate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = async {
        let caller = state.auth.authenticate(&headers)?;
        let policy = caller.policy;
        let req: GenerateRequest = parse_json(&body)?;
        let m = state.model()?;
        let mut texts = vec![req.prompt.clone()];
        state
            .guard
            .check_input(policy.input, &mut texts, "prompt")?;
        let prompt = m
            .tokenizer
            .encode(&texts[0], true, false)
            .map_err(|e| ApiError::invalid(e.to_string(), Some("prompt")))?;
        let max_tokens = params::max_tokens(req.max_tokens, "max_tokens", 128)?;
        let fields = SamplingFields {
            temperature: Some(req.temperature.unwrap_or(0.7)),
            seed: req.seed,
            ..SamplingFields::default()
        };
        let gen = params::generate_params(&fields, max_tokens, None)?;
        state.auth.admit(&caller)?;
        let id = state.request_id("gen");
        let (c, usage) = run::complete_one(&state, &m, caller, &id, prompt, &gen).await?;
        Ok::<_, ApiError>(
            Json(GenerateResponse {
                finish_reason: c.finish_reason_str().unwrap_or_else(|| "length".into()),
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: c.ids.len(),
                text: c.text,
            })
            .into_response(),
        )
    }
    .await;
    answer(r)
}

/// The chat page.
pub async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../../assets/chat.html"),
    )
        .into_response()
}

/// A no-op service worker (browsers and llama.cpp's UI tests ask for it).
pub async fn service_worker() -> Response {
    (
        [(header::CONTENT_TYPE, "application/javascript")],
        "self.addEventListener('fetch', () => {});\n",
    )
        .into_response()
}

/// The web app manifest of the chat page.
pub async fn manifest() -> Response {
    (
        [(header::CONTENT_TYPE, "application/manifest+json")],
        r#"{"name":"hearth chat","short_name":"hearth","start_url":"/","display":"standalone"}"#,
    )
        .into_response()
}

/// Version of the page's assets.
pub async fn version() -> Response {
    Json(serde_json::json!({"version": env!("CARGO_PKG_VERSION")})).into_response()
}

/// The OpenAPI document of our API.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../assets/openapi.json"),
    )
        .into_response()
}
