//! `POST /v1/moderations`: OpenAI's moderation schema over hearth-guard's term lists, with
//! an optional second opinion from the served model as a Llama-Guard-style judge and/or
//! a trained probe over its hidden states.

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
    merge_scores, p_unsafe, veto, LlamaGuardPrompt, LlamaGuardVerdict, Moderation, ModerationProbe,
    ProbeOpinion, Role,
};
use hearth_tokenizer::chat::ChatMessage;

use super::parse_json;
use crate::run;
use crate::state::{AppState, ServedModel};
use crate::ApiError;

/// Most inputs in one request.
pub const MAX_INPUTS: usize = 64;

/// First-token alternatives the judge reports, to weigh "unsafe" against "safe".
const JUDGE_TOP_LOGPROBS: usize = 10;

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

/// What the judge made of one text: its verdict (hazards from the greedy reply) and the
/// probability it gave "unsafe" against "safe" as its first token.
struct Opinion {
    verdict: LlamaGuardVerdict,
    p_unsafe: Option<f32>,
}

/// The served model's opinion of each text as a Llama Guard judge (`None` where it did not
/// answer in form), all texts submitted at once so the engine batches them.
async fn judge_all(
    model: &Arc<ServedModel>,
    adapter: Option<&str>,
    texts: &[String],
) -> Vec<Option<Opinion>> {
    // An adapter trained as a judge learned the brief prompt; a base model needs the list.
    let template = match adapter {
        Some(_) => LlamaGuardPrompt::brief(),
        None => LlamaGuardPrompt::default(),
    };
    let mut prompts = Vec::with_capacity(texts.len());
    for text in texts {
        let prompt = template.build(&[(Role::User, text)], Role::User);
        let ids = model
            .template
            .render(&[ChatMessage::new("user", prompt)], true)
            .ok()
            .and_then(|rendered| model.tokenizer.encode_chat(&rendered).ok());
        match ids {
            Some(ids) => prompts.push(ids),
            None => return texts.iter().map(|_| None).collect(),
        }
    }
    let params = GenerateParams {
        max_tokens: 12,
        sampling: SamplingParams::default(),
        logprobs: Some(JUDGE_TOP_LOGPROBS),
        ..GenerateParams::default()
    };
    let Ok(streams) = run::submit(model, &prompts, &params, 1, "input", adapter).await else {
        return texts.iter().map(|_| None).collect();
    };
    let mut replies = vec![String::new(); texts.len()];
    let mut firsts: Vec<Option<f32>> = vec![None; texts.len()];
    let mut started = vec![false; texts.len()];
    let mut merged = run::merge(streams, &[]);
    use futures_util::StreamExt;
    while let Some((i, ev)) = merged.next().await {
        if let run::ChoiceEvent::Token { text, logprobs, .. } = ev {
            if !std::mem::replace(&mut started[i], true) {
                firsts[i] =
                    logprobs.and_then(|lp| {
                        p_unsafe(lp.top.iter().map(|&(id, logprob)| {
                            (super::token_text(&model.tokenizer, id).0, logprob)
                        }))
                    });
            }
            replies[i].push_str(&text);
        }
    }
    replies
        .iter()
        .zip(firsts)
        .map(|(reply, p_unsafe)| {
            LlamaGuardVerdict::parse(reply)
                .ok()
                .map(|verdict| Opinion { verdict, p_unsafe })
        })
        .collect()
}

/// The probe's opinion of each text: the served model's pooled hidden states, run off
/// the async threads, through the probe's heads.
async fn probe_all(
    model: &Arc<ServedModel>,
    probe: &Arc<ModerationProbe>,
    texts: &[String],
) -> Result<Vec<ProbeOpinion>, ApiError> {
    let (model, probe, texts) = (Arc::clone(model), Arc::clone(probe), texts.to_vec());
    let max_tokens = probe.features.max_tokens.min(model.context_length);
    tokio::task::spawn_blocking(move || {
        texts
            .iter()
            .map(|text| {
                let features = hearth_engine::pooled::mean_hidden(
                    model.engine.model(),
                    &model.tokenizer,
                    text,
                    max_tokens,
                    probe.features.depth,
                )
                .map_err(|e| ApiError::from_engine(e, "input"))?;
                probe
                    .opinion(&features)
                    .map_err(|e| ApiError::internal(e.to_string()))
            })
            .collect()
    })
    .await
    .map_err(|_| ApiError::internal("the moderation probe stopped unexpectedly"))?
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
    let opts = &state.options;
    let served = if opts.moderation_judge || opts.moderation_probe.is_some() {
        Some(state.model()?)
    } else {
        None
    };
    let opinions = match &served {
        Some(model) if opts.moderation_judge => {
            let adapter = opts.moderation_judge_lora.as_deref();
            judge_all(model, adapter, &inputs).await
        }
        _ => inputs.iter().map(|_| None).collect(),
    };
    let probed = match (&served, &opts.moderation_probe) {
        (Some(model), Some(probe)) => Some(probe_all(model, probe, &inputs).await?),
        _ => None,
    };
    let mut results = Vec::with_capacity(inputs.len());
    for (i, (t, opinion)) in inputs.iter().zip(opinions).enumerate() {
        let mut m = state.guard.moderate(t);
        let mut scores = m.scores;
        if let Some(o) = opinion {
            scores = merge_scores(&scores, &o.verdict.scores(), opts.moderation_judge_merge);
            if let Some(p) = o.p_unsafe {
                scores = veto(&scores, p, opts.moderation_judge_veto);
            }
        }
        if let (Some(probe), Some(opinions)) = (&opts.moderation_probe, &probed) {
            scores = probe.merge(&scores, &opinions[i]);
        }
        if scores != m.scores {
            m = state.guard.moderator.verdict(scores, m.matches);
        }
        results.push(result(&m));
    }
    Ok(Json(ModerationResponse {
        id: state.request_id("modr"),
        model: match (opts.moderation_judge, opts.moderation_probe.is_some()) {
            (true, true) => format!("{MODEL_NAME}+judge+probe"),
            (true, false) => format!("{MODEL_NAME}+judge"),
            (false, true) => format!("{MODEL_NAME}+probe"),
            (false, false) => MODEL_NAME.to_string(),
        },
        results,
    })
    .into_response())
}
