//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hearth_api::{
    ChatChoice, ChatCompletion, ChatCompletionRequest, ChatLogprobs, ChatMessageOut,
    ChatTokenLogprob, MessageContent, TopLogprob,
};
use hearth_engine::TokenLogprobs;
use hearth_tokenizer::chat::ChatMessage;
use hearth_tokenizer::Tokenizer;

use super::sse::{self, Flavor};
use super::{parse_json, token_text, unix_now};
use crate::params::{self, SamplingFields, MAX_TOP_LOGPROBS};
use crate::run::{self, UsageGuard};
use crate::state::AppState;
use crate::ApiError;

/// The handler.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Roles a message may have.
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

fn to_messages(req: &ChatCompletionRequest) -> Result<Vec<ChatMessage>, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "'messages' must not be empty",
            Some("messages"),
        ));
    }
    let mut out = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(ApiError::invalid(
                format!("messages[{i}].role '{}' is not one of {ROLES:?}", m.role),
                Some(&format!("messages[{i}].role")),
            ));
        }
        if m.extra.get("tool_calls").is_some_and(|v| !v.is_null()) || m.role == "tool" {
            return Err(ApiError::unsupported(
                &format!("messages[{i}]"),
                "tool calls are not supported by this server",
            ));
        }
        let content = match &m.content {
            None => String::new(),
            Some(MessageContent::Text(t)) => t.clone(),
            Some(MessageContent::Parts(parts)) => {
                let mut t = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(s)) => t.push_str(s),
                        ("text", None) => {
                            return Err(ApiError::invalid(
                                "a text part needs 'text'",
                                Some(&format!("messages[{i}].content[{j}].text")),
                            ))
                        }
                        (other, _) => {
                            return Err(ApiError::unsupported(
                                &format!("messages[{i}].content[{j}]"),
                                &format!(
                                    "content parts of type '{other}' are not supported (text only)"
                                ),
                            ))
                        }
                    }
                }
                t
            }
        };
        let role = if m.role == "developer" {
            "system"
        } else {
            &m.role
        };
        out.push(ChatMessage::new(role, content));
    }
    let n = out.len();
    if n >= 2 && out[n - 1].role == "assistant" && out[n - 2].role == "assistant" {
        return Err(ApiError::invalid(
            "the conversation cannot end with two assistant messages",
            Some("messages"),
        ));
    }
    Ok(out)
}

/// Chat log-probabilities of one choice's tokens.
pub fn chat_logprobs(tok: &Tokenizer, ids: &[u32], lps: &[TokenLogprobs]) -> ChatLogprobs {
    ChatLogprobs {
        content: ids
            .iter()
            .zip(lps)
            .map(|(&id, lp)| {
                let (token, bytes) = token_text(tok, id);
                ChatTokenLogprob {
                    token,
                    logprob: lp.logprob,
                    bytes: Some(bytes),
                    top_logprobs: lp
                        .top
                        .iter()
                        .map(|&(t, l)| {
                            let (token, bytes) = token_text(tok, t);
                            TopLogprob {
                                token,
                                logprob: l,
                                bytes: Some(bytes),
                            }
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

async fn handle(
    state: Arc<AppState>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(headers)?;
    let policy = caller.policy;
    let req: ChatCompletionRequest = parse_json(body)?;
    let model = state.model()?;
    let adapter = params::resolve_model(&model, req.model.as_deref())?;
    params::check_extra(&req.extra)?;
    let n = params::choices(req.n)?;
    let logprobs = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (_, Some(k)) if !(0..=MAX_TOP_LOGPROBS).contains(&k) => {
            return Err(ApiError::invalid(
                format!("top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {k}"),
                Some("top_logprobs"),
            ))
        }
        (true, k) => Some(k.unwrap_or(0) as usize),
        (false, Some(k)) if k > 0 => {
            return Err(ApiError::invalid(
                "top_logprobs needs logprobs set to true",
                Some("top_logprobs"),
            ))
        }
        (false, _) => None,
    };
    let mut messages = to_messages(&req)?;
    let mut contents: Vec<String> = messages.iter().map(|m| m.content.clone()).collect();
    state
        .guard
        .check_input(policy.input, &mut contents, "messages")?;
    for (m, c) in messages.iter_mut().zip(contents) {
        m.content = c;
    }
    let rendered = model.template.render(&messages, true).map_err(|e| {
        ApiError::invalid(
            format!("the chat template rejected the messages: {e}"),
            Some("messages"),
        )
    })?;
    let prompt = model.tokenizer.encode_chat(&rendered).map_err(|e| {
        ApiError::invalid(
            format!("cannot tokenize the messages: {e}"),
            Some("messages"),
        )
    })?;
    let room = model.context_length.saturating_sub(prompt.len());
    let (given, param) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(v), _) => (Some(v), "max_completion_tokens"),
        (None, v) => (v, "max_tokens"),
    };
    let default = state
        .options
        .default_max_tokens
        .map_or(room, |cap| cap.min(room));
    let max_tokens = params::max_tokens(given, param, default)?;
    let fields = SamplingFields {
        temperature: Some(req.temperature.unwrap_or(state.options.default_temperature)),
        top_p: req.top_p,
        top_k: req.top_k,
        min_p: req.min_p,
        frequency_penalty: req.frequency_penalty,
        presence_penalty: req.presence_penalty,
        repetition_penalty: req.repetition_penalty,
        seed: req.seed,
        stop: req.stop.clone().map(hearth_api::StopSpec::into_vec),
        ignore_eos: req.ignore_eos,
    };
    let gen = params::generate_params(&fields, max_tokens, logprobs)?;
    state.auth.admit(&caller)?;
    let id = state.request_id("chatcmpl");
    if state.options.log_prompts {
        let safe = state.guard.redact_for_log(&rendered);
        tracing::info!(request_id = %id, prompt = %safe, "prompt");
    }
    let prompt_len = prompt.len();
    let streams = run::submit(&model, &[prompt], &gen, n, "messages", adapter.as_deref()).await?;
    let usage = UsageGuard::new(Arc::clone(&state), caller, id.clone(), prompt_len);
    let created = unix_now();
    if req.stream.unwrap_or(false) {
        let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
        return Ok(sse::respond(
            Arc::clone(&state),
            policy.output,
            Flavor::Chat,
            id,
            created,
            model,
            streams,
            n,
            usage,
            include_usage,
            String::new(),
        ));
    }
    let mut done = run::collect_all(streams, n, &usage).await?;
    run::filter_collected(&state, policy.output, &id, &mut done);
    let choices = done
        .into_iter()
        .enumerate()
        .map(|(index, c)| ChatChoice {
            finish_reason: c.finish_reason_str(),
            index,
            logprobs: logprobs.map(|_| chat_logprobs(&model.tokenizer, &c.ids, &c.logprobs)),
            message: ChatMessageOut {
                role: "assistant".into(),
                content: Some(c.text),
                refusal: None,
                annotations: Vec::new(),
            },
        })
        .collect();
    let body = ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model: model.name.clone(),
        choices,
        usage: usage.usage(),
        system_fingerprint: Some(crate::FINGERPRINT.into()),
    };
    Ok(axum::Json(body).into_response())
}
