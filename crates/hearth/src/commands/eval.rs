//! `hearth eval`: accuracy on a multiple-choice or exact-match question set and answer
//! latency (p50/p95), from a local model (optionally with a LoRA adapter) or from a
//! running OpenAI-compatible server; `--min-accuracy` / `--max-p95-ms` turn the
//! numbers into a pass/fail exit status.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hearth_engine::{GenerateParams, Session};
use hearth_model::LoraAdapter;
use hearth_redteam::Endpoint;
use hearth_tokenizer::chat::{ChatMessage, ChatTemplate};
use hearth_train::eval::{self, MatchMode, Responder};
use indicatif::{ProgressBar, ProgressStyle};

use super::{Loaded, ModelArgs};

/// Flags of `hearth eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Question set (JSONL or JSON array): `question` + `choices` + `answer` (letter,
    /// index or text), or `question`/`prompt` + `answer`/`answers`.
    #[arg(long)]
    pub data: PathBuf,
    /// Ask a running OpenAI-compatible server instead (`http://host:port`); --model
    /// then names the model in each request.
    #[arg(long)]
    pub url: Option<String>,
    /// API key for --url.
    #[arg(long, env = "HEARTH_API_KEY")]
    pub api_key: Option<String>,
    /// A LoRA adapter for the local model (PEFT directory or GGUF LoRA file).
    #[arg(long)]
    pub lora: Option<PathBuf>,
    /// A system prompt put before every question.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Free-text answers: `exact` (normalised equality) or `contains`.
    #[arg(long, default_value = "contains", value_parser = ["exact", "contains"])]
    pub r#match: String,
    /// Seconds to wait for one server answer.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Fail (exit status 1) below this accuracy (0..1).
    #[arg(long)]
    pub min_accuracy: Option<f64>,
    /// Fail (exit status 1) when the 95th percentile answer time exceeds this (ms).
    #[arg(long)]
    pub max_p95_ms: Option<f64>,
    /// Print the report as one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Greedy answers from the local model.
struct Local<'m> {
    m: &'m Loaded,
    tpl: ChatTemplate,
    lora: Option<Arc<hearth_model::ModelLora>>,
    params: GenerateParams,
}

impl Responder for Local<'_> {
    fn respond(&mut self, messages: &[ChatMessage]) -> Result<String, String> {
        let run = || -> anyhow::Result<String> {
            let ids = self
                .m
                .tokenizer
                .encode_chat(&self.tpl.render(messages, true)?)?;
            let mut s = Session::new(&self.m.model).with_lora(self.lora.clone());
            let g = s.generate(&self.m.tokenizer, &ids, &self.params, &mut |_| {})?;
            Ok(g.text.trim().to_string())
        };
        run().map_err(|e| format!("{e:#}"))
    }
}

/// Greedy answers from a server's `/chat/completions`.
struct Remote {
    endpoint: Endpoint,
    model: String,
    max_tokens: usize,
    timeout: Duration,
}

impl Responder for Remote {
    fn respond(&mut self, messages: &[ChatMessage]) -> Result<String, String> {
        let body = serde_json::json!({
            "model": self.model, "messages": messages,
            "temperature": 0, "max_tokens": self.max_tokens,
        });
        let reply = self
            .endpoint
            .request(
                "POST",
                "/chat/completions",
                Some(&body.to_string()),
                self.timeout,
            )
            .map_err(|e| e.to_string())?;
        if reply.status != 200 {
            return Err(format!("HTTP {}: {}", reply.status, reply.body));
        }
        let v: serde_json::Value = serde_json::from_str(&reply.body).map_err(|e| e.to_string())?;
        v["choices"][0]["message"]["content"]
            .as_str()
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("no choices[0].message.content in {}", reply.body))
    }
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let items = eval::load_items(&args.data, args.system.as_deref())?;
    let mode = match args.r#match.as_str() {
        "exact" => MatchMode::Exact,
        _ => MatchMode::Contains,
    };
    let loaded;
    let mut responder: Box<dyn Responder> = match &args.url {
        Some(url) => {
            anyhow::ensure!(
                args.lora.is_none(),
                "--lora applies to a local model, not --url"
            );
            Box::new(Remote {
                endpoint: Endpoint::parse(url, args.api_key.clone())?,
                model: args.model.model.clone(),
                max_tokens: args.max_tokens,
                timeout: Duration::from_secs(args.timeout),
            })
        }
        None => {
            loaded = args.model.load()?;
            let tpl = super::chat::template_for(&loaded)?;
            let lora = match &args.lora {
                Some(p) => {
                    let a = LoraAdapter::open(p, loaded.model.config())
                        .with_context(|| format!("reading the adapter {}", p.display()))?;
                    Some(Arc::new(loaded.model.bind_lora("eval", &a)?))
                }
                None => None,
            };
            Box::new(Local {
                m: &loaded,
                tpl,
                lora,
                params: GenerateParams {
                    max_tokens: args.max_tokens,
                    ..GenerateParams::default()
                },
            })
        }
    };
    let bar = ProgressBar::new(items.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} questions  {msg}  {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut right = 0usize;
    let (report, outcomes) = eval::run(&items, responder.as_mut(), mode, &mut |i, o| {
        right += usize::from(o.correct);
        bar.set_message(format!(
            "accuracy {:.1}%",
            100.0 * right as f64 / (i + 1) as f64
        ));
        bar.inc(1);
    });
    bar.finish_and_clear();
    if let Some(e) = outcomes.iter().find_map(|o| o.error.as_ref()) {
        eprintln!("{} answers failed; the first: {e}", report.errors);
    }
    let mut failures = Vec::new();
    if let Some(min) = args.min_accuracy {
        if report.accuracy < min {
            failures.push(format!("accuracy {:.3} < {min}", report.accuracy));
        }
    }
    if let Some(max) = args.max_p95_ms {
        if report.latency_p95_ms > max {
            failures.push(format!(
                "p95 latency {:.0} ms > {max} ms",
                report.latency_p95_ms
            ));
        }
    }
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["data"] = serde_json::json!(args.data);
        v["target"] =
            serde_json::json!(args.url.clone().unwrap_or_else(|| args.model.model.clone()));
        v["match"] = serde_json::json!(args.r#match);
        v["passed"] = serde_json::json!(failures.is_empty());
        println!("{v}");
    } else {
        println!(
            "accuracy {:.1}% ({}/{}), latency p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            100.0 * report.accuracy,
            report.correct,
            report.n,
            report.latency_p50_ms,
            report.latency_p95_ms,
            report.latency_max_ms
        );
    }
    anyhow::ensure!(failures.is_empty(), "eval failed: {}", failures.join("; "));
    Ok(())
}
