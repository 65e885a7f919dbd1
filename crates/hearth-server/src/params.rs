//! Request fields → engine parameters, with OpenAI's ranges and our field policy:
//! fields that would change the answer and that we do not support are a 400 naming
//! the field; harmless ones are ignored.

use std::collections::BTreeMap;

use hearth_engine::{GenerateParams, SamplingParams};
use serde_json::Value;

use crate::ApiError;

/// The sampling fields common to chat and completions.
#[derive(Debug, Clone, Default)]
pub struct SamplingFields {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<Vec<String>>,
    pub ignore_eos: Option<bool>,
}

/// Most alternatives per token we report (OpenAI's limit for chat).
pub const MAX_TOP_LOGPROBS: i64 = 20;

/// Most choices per request.
pub const MAX_N: i64 = 16;

/// Builds engine parameters; `max_tokens` already resolved by the caller.
pub fn generate_params(
    f: &SamplingFields,
    max_tokens: usize,
    logprobs: Option<usize>,
) -> Result<GenerateParams, ApiError> {
    let top_k = match f.top_k {
        None | Some(-1) | Some(0) => 0,
        Some(k) if k > 0 => k as usize,
        Some(k) => {
            return Err(ApiError::invalid(
                format!("top_k must be -1, 0 or positive, got {k}"),
                Some("top_k"),
            ))
        }
    };
    let stop = f.stop.clone().unwrap_or_default();
    if stop.len() > 16 {
        return Err(ApiError::invalid(
            format!("at most 16 stop sequences, got {}", stop.len()),
            Some("stop"),
        ));
    }
    if let Some(i) = stop.iter().position(String::is_empty) {
        return Err(ApiError::invalid(
            format!("stop sequence #{i} is empty"),
            Some("stop"),
        ));
    }
    let temperature = f.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            format!("temperature must be in [0, 2], got {temperature}"),
            Some("temperature"),
        ));
    }
    let sampling = SamplingParams {
        temperature,
        top_k,
        top_p: f.top_p.unwrap_or(1.0),
        min_p: f.min_p.unwrap_or(0.0),
        repetition_penalty: f.repetition_penalty.unwrap_or(1.0),
        frequency_penalty: f.frequency_penalty.unwrap_or(0.0),
        presence_penalty: f.presence_penalty.unwrap_or(0.0),
        penalty_last_n: usize::MAX,
        seed: f.seed.map(|s| s as u64),
    };
    sampling
        .validate()
        .map_err(|e| ApiError::from_engine(e, "prompt"))?;
    Ok(GenerateParams {
        max_tokens,
        sampling,
        stop,
        ignore_eos: f.ignore_eos.unwrap_or(false),
        logprobs,
    })
}

/// Resolves `max_tokens`: a given value must be >= 1; absent means `default`.
pub fn max_tokens(given: Option<i64>, param: &str, default: usize) -> Result<usize, ApiError> {
    match given {
        None => Ok(default.max(1)),
        Some(v) if v >= 1 => Ok(v as usize),
        Some(v) => Err(ApiError::invalid(
            format!("{param} must be at least 1, got {v}"),
            Some(param),
        )),
    }
}

/// OpenAI's APIs require `model`; with one model served any name selects it (as
/// llama-server does), so clients written for other servers work unchanged.
pub fn require_model(model: Option<&str>) -> Result<(), ApiError> {
    match model {
        Some(m) if !m.trim().is_empty() => Ok(()),
        _ => Err(ApiError::invalid(
            "you must provide a model parameter",
            Some("model"),
        )),
    }
}

/// The adapter a request's `model` names: `None` for the base model. A name is the
/// served name, an adapter's name, or `<served name>:<adapter>`. Without adapters
/// any name means the base model (llama-server's leniency); once adapters are
/// served, an unknown name is a 404 rather than a silent fall back to the base.
pub fn resolve_model(
    m: &crate::ServedModel,
    model: Option<&str>,
) -> Result<Option<String>, ApiError> {
    require_model(model)?;
    let name = model.unwrap_or_default().trim();
    if name == m.name {
        return Ok(None);
    }
    let adapters = m.engine.adapter_names();
    if let Some((base, a)) = name.split_once(':') {
        if base == m.name && adapters.iter().any(|x| x == a) {
            return Ok(Some(a.to_string()));
        }
        return Err(ApiError::model_not_found(name));
    }
    if adapters.iter().any(|x| x == name) {
        return Ok(Some(name.to_string()));
    }
    if adapters.is_empty() {
        Ok(None)
    } else {
        Err(ApiError::model_not_found(name))
    }
}

/// Resolves `n` (1..=16).
pub fn choices(n: Option<i64>) -> Result<usize, ApiError> {
    match n.unwrap_or(1) {
        n @ 1..=MAX_N => Ok(n as usize),
        n => Err(ApiError::invalid(
            format!("n must be between 1 and {MAX_N}, got {n}"),
            Some("n"),
        )),
    }
}

/// Fields that are harmless to ignore (they do not change the generated text).
const HARMLESS: &[&str] = &[
    "user",
    "store",
    "metadata",
    "service_tier",
    "parallel_tool_calls",
    "cache_prompt",
    "reasoning_effort",
    "timings_per_token",
    "return_tokens",
    "id_slot",
];

/// Checks fields outside the modelled ones: unsupported ones that would change the
/// answer are a 400 naming them; harmless or empty ones pass; unknown ones are
/// ignored with a log line (as vLLM does).
pub fn check_extra(extra: &BTreeMap<String, Value>) -> Result<(), ApiError> {
    for (k, v) in extra {
        if v.is_null() || HARMLESS.contains(&k.as_str()) {
            continue;
        }
        let empty = match v {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        let reason = match k.as_str() {
            "tools" | "functions" if !empty => "tool calls are not supported by this server",
            "tool_choice" | "function_call" if v != "none" && v != "auto" => {
                "tool calls are not supported by this server"
            }
            "logit_bias" if !empty => "logit_bias is not supported",
            "response_format" => match v.get("type").and_then(Value::as_str) {
                Some("text") => continue,
                _ => "structured output (JSON mode / JSON schema) is not supported",
            },
            "grammar" | "json_schema" | "guided_json" | "guided_regex" | "guided_choice"
            | "guided_grammar" | "structured_outputs" => "constrained decoding is not supported",
            "modalities" => {
                if v.as_array().is_some_and(|a| a.iter().all(|m| m == "text")) {
                    continue;
                }
                "only text output is supported"
            }
            "audio" => "audio output is not supported",
            "prediction" => "predicted outputs are not supported",
            "web_search_options" => "web search is not supported",
            "suffix" => "suffix (fill-in-the-middle) is not supported",
            "best_of" => match v.as_i64() {
                Some(1) => continue,
                _ => "best_of other than 1 is not supported",
            },
            "n_probs" | "logprobs_prompt" | "prompt_logprobs" => {
                "prompt log-probabilities are not supported"
            }
            _ => {
                tracing::debug!(field = %k, "ignoring unknown request field");
                continue;
            }
        };
        return Err(ApiError::unsupported(k, reason));
    }
    Ok(())
}
