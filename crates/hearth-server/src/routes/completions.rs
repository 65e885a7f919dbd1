//! `POST /v1/completions` (legacy text completions).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hearth_api::{
    CompletionChoice, CompletionLogprobs, CompletionRequest, CompletionResponse, PromptSpec,
};
use hearth_engine::TokenLogprobs;
use hearth_tokenizer::Tokenizer;

use super::sse::{self, Flavor};
use super::{parse_json, token_text, unix_now};
use crate::params::{self, SamplingFields, MAX_TOP_LOGPROBS};
use crate::run::{self, UsageGuard};
use crate::state::{AppState, ServedModel};
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

/// Legacy log-probabilities of tokens whose text starts at byte `start` of the choice.
pub fn completion_logprobs(
    tok: &Tokenizer,
    ids: &[u32],
    lps: &[TokenLogprobs],
    start: usize,
) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    let mut offset = start;
    for (&id, lp) in ids.iter().zip(lps) {
        let (text, _) = token_text(tok, id);
        out.text_offset.push(offset);
        offset += text.len();
        out.tokens.push(text);
        out.token_logprobs.push(Some(lp.logprob));
        let top: BTreeMap<String, f32> = lp
            .top
            .iter()
            .map(|&(t, l)| (token_text(tok, t).0, l))
            .collect();
        out.top_logprobs.push(Some(top));
    }
    out
}

/// The prompts of a request as token ids (BOS added where the model wants it).
fn prompts(model: &ServedModel, spec: &PromptSpec) -> Result<Vec<Vec<u32>>, ApiError> {
    let enc = |t: &str| {
        model.tokenizer.encode(t, true, true).map_err(|e| {
            ApiError::invalid(format!("cannot tokenize the prompt: {e}"), Some("prompt"))
        })
    };
    let vocab = model.tokenizer.vocab_size() as u32;
    let check = |ids: &Vec<u32>| match ids.iter().find(|&&i| i >= vocab) {
        Some(bad) => Err(ApiError::invalid(
            format!("token id {bad} is outside the vocabulary (size {vocab})"),
            Some("prompt"),
        )),
        None => Ok(ids.clone()),
    };
    let out = match spec {
        PromptSpec::Text(t) => vec![enc(t)?],
        PromptSpec::Texts(ts) => ts.iter().map(|t| enc(t)).collect::<Result<_, _>>()?,
        PromptSpec::Tokens(ids) => vec![check(ids)?],
        PromptSpec::TokenBatches(b) => b.iter().map(check).collect::<Result<_, _>>()?,
    };
    if out.is_empty() {
        return Err(ApiError::invalid("'prompt' has no prompts", Some("prompt")));
    }
    if out.len() > 16 {
        return Err(ApiError::invalid(
            "at most 16 prompts per request",
            Some("prompt"),
        ));
    }
    Ok(out)
}

/// Applies the input policy to the prompts (token prompts are checked as their text and
/// replaced by the redacted text only when redaction changed something).
fn guard_prompts(
    state: &AppState,
    model: &ServedModel,
    policy: crate::InputPolicy,
    spec: &mut PromptSpec,
) -> Result<(), ApiError> {
    let tok = &model.tokenizer;
    let mut texts: Vec<String> = match &*spec {
        PromptSpec::Text(t) => vec![t.clone()],
        PromptSpec::Texts(ts) => ts.clone(),
        PromptSpec::Tokens(ids) => vec![tok.decode(ids, false)],
        PromptSpec::TokenBatches(b) => b.iter().map(|ids| tok.decode(ids, false)).collect(),
    };
    let before = texts.clone();
    state.guard.check_input(policy, &mut texts, "prompt")?;
    if texts != before {
        *spec = PromptSpec::Texts(texts);
    }
    Ok(())
}

async fn handle(
    state: Arc<AppState>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let caller = state.auth.authenticate(headers)?;
    let policy = caller.policy;
    let mut req: CompletionRequest = parse_json(body)?;
    let model = state.model()?;
    let adapter = params::resolve_model(&model, req.model.as_deref())?;
    params::check_extra(&req.extra)?;
    let n = params::choices(req.n)?;
    let logprobs = match req.logprobs {
        None => None,
        Some(k) if (0..=MAX_TOP_LOGPROBS).contains(&k) => Some(k as usize),
        Some(k) => {
            return Err(ApiError::invalid(
                format!("logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {k}"),
                Some("logprobs"),
            ))
        }
    };
    if policy.input != crate::InputPolicy::Off {
        guard_prompts(&state, &model, policy.input, &mut req.prompt)?;
    }
    let prompts = prompts(&model, &req.prompt)?;
    let max_tokens = params::max_tokens(req.max_tokens, "max_tokens", 16)?;
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
    let echo = req.echo.unwrap_or(false);
    if echo && prompts.len() > 1 && req.stream.unwrap_or(false) {
        return Err(ApiError::invalid(
            "echo with several prompts cannot be streamed",
            Some("echo"),
        ));
    }
    state.auth.admit(&caller)?;
    let id = state.request_id("cmpl");
    let prompt_tokens = prompts.iter().map(Vec::len).sum();
    let streams = run::submit(&model, &prompts, &gen, n, "prompt", adapter.as_deref()).await?;
    let usage = UsageGuard::new(Arc::clone(&state), caller, id.clone(), prompt_tokens);
    let echo_text = |p: &[u32]| model.tokenizer.decode(p, false);
    let created = unix_now();
    if req.stream.unwrap_or(false) {
        let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
        let prefix = if echo {
            echo_text(&prompts[0])
        } else {
            String::new()
        };
        return Ok(sse::respond(
            Arc::clone(&state),
            policy.output,
            Flavor::Completion,
            id,
            created,
            Arc::clone(&model),
            streams,
            n,
            usage,
            include_usage,
            prefix,
        ));
    }
    let mut done = run::collect_all(streams, n, &usage).await?;
    run::filter_collected(&state, policy.output, &id, &mut done);
    let choices = done
        .into_iter()
        .enumerate()
        .map(|(index, c)| {
            let prefix = if echo {
                echo_text(&prompts[index / n])
            } else {
                String::new()
            };
            CompletionChoice {
                index,
                logprobs: logprobs.map(|_| {
                    completion_logprobs(&model.tokenizer, &c.ids, &c.logprobs, prefix.len())
                }),
                text: prefix + &c.text,
                finish_reason: c.finish_reason_str(),
            }
        })
        .collect();
    Ok(axum::Json(CompletionResponse {
        id,
        object: "text_completion".into(),
        created,
        model: model.name.clone(),
        choices,
        usage: Some(usage.usage()),
        system_fingerprint: Some(crate::FINGERPRINT.into()),
    })
    .into_response())
}
