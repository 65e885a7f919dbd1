//! The LLM judge's side of `hearth guard eval-moderation`: its prompts, a fine-tuning set
//! that teaches a served model (through a LoRA adapter) to answer them, and scoring of a
//! running server's `/v1/moderations`, judge included.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use hearth_guard::moderation::{
    Category, CategoryFlags, LlamaGuardPrompt, LlamaGuardVerdict, Role,
};
use hearth_redteam::Endpoint;
use indicatif::ProgressBar;

use super::guard_eval::{Prediction, Sample};

fn create(path: &Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    Ok(std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("{}: creating", path.display()))?,
    ))
}

/// `{"line": N, "prompt": "..."}` per sample: the prompt the server's judge sends.
pub fn write_prompts(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut out = create(path)?;
    let judge = LlamaGuardPrompt::default();
    for s in samples {
        let p = judge.build(&[(Role::User, &s.prompt)], Role::User);
        writeln!(out, "{}", serde_json::json!({"line": s.line, "prompt": p}))?;
    }
    out.flush()
        .with_context(|| format!("{}: writing", path.display()))
}

/// One chat record per sample: the brief judge prompt (the one the server sends through
/// `--moderation-judge-lora`), and the verdict its labels call for.
pub fn write_training(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    let mut out = create(path)?;
    let judge = LlamaGuardPrompt::brief();
    for s in samples {
        let prompt = judge.build(&[(Role::User, &s.prompt)], Role::User);
        let reply = LlamaGuardVerdict::for_categories(&s.categories()).reply();
        let record = serde_json::json!({"messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": reply},
        ]});
        writeln!(out, "{record}")?;
    }
    out.flush()
        .with_context(|| format!("{}: writing", path.display()))
}

/// Reads one `/v1/moderations` answer: the first result's flags, and the model name.
fn parse_moderation(body: &str) -> anyhow::Result<(Prediction, String)> {
    let v: serde_json::Value = serde_json::from_str(body).context("the answer is not JSON")?;
    let result = &v["results"][0];
    let flagged = result["flagged"]
        .as_bool()
        .context("the answer has no results[0].flagged")?;
    let mut categories = CategoryFlags::default();
    let mut named = Vec::new();
    for c in Category::ALL {
        if result["categories"][c.name()].as_bool() == Some(true) {
            categories.set(c, true);
            named.push(c.name());
        }
    }
    let model = v["model"].as_str().unwrap_or("?").to_string();
    Ok((
        Prediction {
            flagged,
            categories,
            why: format!("server: {named:?}"),
        },
        model,
    ))
}

/// Posts every sample to `endpoint`'s `/v1/moderations`, `concurrency` at a time, and
/// returns the decisions in sample order with the model name the server reported.
pub fn predict_remotely(
    endpoint: &Endpoint,
    samples: &[Sample],
    concurrency: usize,
) -> anyhow::Result<(Vec<Prediction>, String)> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Prediction>>> =
        Mutex::new((0..samples.len()).map(|_| None).collect());
    let model = Mutex::new(String::new());
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_message("moderations");
    let failure = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(s) = samples.get(i) else {
                            return Ok(());
                        };
                        let body = serde_json::json!({"input": s.prompt}).to_string();
                        let reply = endpoint
                            .request(
                                "POST",
                                "/moderations",
                                Some(&body),
                                Duration::from_secs(300),
                            )
                            .with_context(|| format!("{}/moderations", endpoint.display_url()))?;
                        if reply.status != 200 {
                            anyhow::bail!(
                                "{}/moderations answered {} for line {}: {}",
                                endpoint.display_url(),
                                reply.status,
                                s.line,
                                reply.body.chars().take(300).collect::<String>()
                            );
                        }
                        let (p, m) = parse_moderation(&reply.body)
                            .with_context(|| format!("line {}", s.line))?;
                        results.lock().expect("results lock")[i] = Some(p);
                        *model.lock().expect("model lock") = m;
                        bar.inc(1);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().expect("a moderation worker panicked").err())
            .next()
    });
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    let predictions = results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|p| p.expect("every sample has an answer"))
        .collect();
    Ok((predictions, model.into_inner().expect("model lock")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_moderation_answers() {
        let body = r#"{"id":"modr-1","model":"hearth-moderation+judge","results":[
            {"flagged":true,"categories":{"hate":true,"violence":false},"category_scores":{}}]}"#;
        let (p, model) = parse_moderation(body).unwrap();
        assert!(p.flagged && p.categories.get(Category::Hate));
        assert!(!p.categories.get(Category::Violence));
        assert_eq!(model, "hearth-moderation+judge");
        assert!(parse_moderation(r#"{"error":{"message":"x"}}"#).is_err());
    }
}
