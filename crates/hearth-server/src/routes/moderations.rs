//! `POST /v1/moderations`: OpenAI's moderation schema over hearth-guard's term lists, with
//! an optional second opinion from the served model as a Llama-Guard-style judge.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_api::{ModerationInput, ModerationRequest, ModerationResponse, ModerationResult};
use hearth_engine::{GenerateParams, SamplingParams};
use hearth_guard::moderation::{
    merge_scores, LlamaGuardPrompt, LlamaGuardVerdict, Moderation, Role,
};
use hearth_tokenizer::chat::ChatMessage;

use super::parse_json;
use crate::run;
use crate::state::{AppState, ServedModel};
use crate::ApiError;

/// Most inputs in one request.
pub const MAX_INPUTS: usize = 64;

/// The classifier's name in answers.
pub const MODEL_NAME: &str = "hearth-guard-terms";

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

fn texts(input: ModerationInput) -> Result<Vec<String>, ApiError> {
    let v = match input {
        ModerationInput::Text(t) => vec![t],
        ModerationInput::Texts(ts) => ts,
        ModerationInput::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| match (p.kind.as_str(), p.text) {
                ("text", Some(t)) => Ok(t),
                (kind, _) => Err(ApiError::unsupported(
                    &format!("input[{i}]"),
                    &format!("inputs of type '{kind}' are not supported (text only)"),
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    if v.is_empty() || v.len() > MAX_INPUTS {
        return Err(ApiError::invalid(
            format!("'input' must hold 1 to {MAX_INPUTS} texts, got {}", v.len()),
            Some("input"),
        ));
    }
    Ok(v)
}

/// The served model's verdict on `text` as a Llama Guard judge, if it answers in form.
async fn judge(
    model: &Arc<ServedModel>,
    adapter: Option<&str>,
    text: &str,
) -> Option<LlamaGuardVerdict> {
    // An adapter trained as a judge learned the brief prompt; a base model needs the list.
    let prompt = match adapter {
        Some(_) => LlamaGuardPrompt::brief(),
        None => LlamaGuardPrompt::default(),
    }
    .build(&[(Role::User, text)], Role::User);
    let rendered = model
        .template
        .render(&[ChatMessage::new("user", prompt)], true)
        .ok()?;
    let ids = model.tokenizer.encode_chat(&rendered).ok()?;
    let params = GenerateParams {
        max_tokens: 12,
        sampling: SamplingParams::default(),
        ..GenerateParams::default()
    };
    let streams = run::submit(model, &[ids], &params, 1, "input", adapter)
        .await
        .ok()?;
    let mut text = String::new();
    let mut merged = run::merge(streams, &[]);
    use futures_util::StreamExt;
    while let Some((_, ev)) = merged.next().await {
        if let run::ChoiceEvent::Token { text: t, .. } = ev {
            text.push_str(&t);
        }
    }
    LlamaGuardVerdict::parse(&text).ok()
}

fn result(m: &Moderation) -> ModerationResult {
    let mut categories = BTreeMap::new();
    let mut category_scores = BTreeMap::new();
    let mut applied = BTreeMap::new();
    for (c, flagged) in m.categories.iter() {
        categories.insert(c.name().to_string(), flagged);
        category_scores.insert(c.name().to_string(), m.scores.get(c));
        applied.insert(c.name().to_string(), vec!["text".to_string()]);
    }
    ModerationResult {
        flagged: m.flagged,
        categories,
        category_scores,
        category_applied_input_types: applied,
    }
}

async fn handle(
    state: Arc<AppState>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(headers)?;
    let req: ModerationRequest = parse_json(body)?;
    let inputs = texts(req.input)?;
    state.auth.admit(&caller)?;
    let judge_model = if state.options.moderation_judge {
        Some(state.model()?)
    } else {
        None
    };
    let mut results = Vec::with_capacity(inputs.len());
    for t in &inputs {
        let mut m = state.guard.moderate(t);
        if let Some(model) = &judge_model {
            let adapter = state.options.moderation_judge_lora.as_deref();
            if let Some(v) = judge(model, adapter, t).await {
                let scores =
                    merge_scores(&m.scores, &v.scores(), state.options.moderation_judge_merge);
                m = state.guard.moderator.verdict(scores, m.matches);
            }
        }
        results.push(result(&m));
    }
    Ok(Json(ModerationResponse {
        id: state.request_id("modr"),
        model: if judge_model.is_some() {
            format!("{MODEL_NAME}+judge")
        } else {
            MODEL_NAME.to_string()
        },
        results,
    })
    .into_response())
}
