//! The model against llama.cpp's outputs in shared/golden: teacher-forced top-5
//! log-probs and greedy continuations, for both real models.

mod common;

use common::*;
use hearth_model::Transformer;

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

fn log_softmax_at(row: &[f32], id: usize) -> f32 {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let lse = row.iter().map(|&v| ((v - max) as f64).exp()).sum::<f64>().ln() as f32 + max;
    row[id] - lse
}

fn check_topk(model: &str) {
    let Some(path) = model_path(model) else { return };
    let m = Transformer::open(&path).unwrap();
    let vocab = m.config().vocab_size;
    let golden = golden(model, "topk.json");
    let (mut decisive, mut agree) = (0, 0);
    let mut diffs = Vec::new();
    for case in golden["cases"].as_array().unwrap() {
        let ids = ids(&case["ids"]);
        let positions = case["positions"].as_array().unwrap();
        let mut cache = m.new_cache();
        let want: Vec<usize> = (0..positions.len()).collect();
        let logits = m.forward(&ids[..positions.len()], &mut cache, &want).unwrap();
        for (j, p) in positions.iter().enumerate() {
            let row = &logits[j * vocab..(j + 1) * vocab];
            let top5 = p["top5"].as_array().unwrap();
            let (t1, l1) = (top5[0][0].as_u64().unwrap() as u32, top5[0][1].as_f64().unwrap());
            let l2 = top5[1][1].as_f64().unwrap();
            if l1 - l2 > 0.1 {
                decisive += 1;
                agree += (argmax(row) == t1) as usize;
            }
            let next = p["next_id"].as_u64().unwrap() as usize;
            let ours = log_softmax_at(row, next) as f64;
            diffs.push((ours - p["next_logprob"].as_f64().unwrap()).abs());
        }
    }
    diffs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = diffs[diffs.len() / 2];
    let rate = agree as f64 / decisive as f64;
    eprintln!("{model}: top-1 agreement {agree}/{decisive} = {rate:.4}, median |Δ logprob| {median:.4}");
    assert!(rate >= 0.98, "{model}: top-1 agreement {rate}");
    assert!(median < 0.05, "{model}: median logprob difference {median}");
}

fn check_greedy(model: &str) {
    let Some(path) = model_path(model) else { return };
    let m = Transformer::open(&path).unwrap();
    let vocab = m.config().vocab_size;
    let golden = golden(model, "greedy.json");
    let cases = golden["cases"].as_array().unwrap();
    let mut matched = 0;
    for case in cases {
        let prompt = ids(&case["prompt_ids"]);
        let expected = ids(&case["greedy_ids"]);
        let n = expected.len().min(16);
        let mut cache = m.new_cache();
        let mut logits = m.forward(&prompt, &mut cache, &[prompt.len() - 1]).unwrap();
        let mut got = Vec::new();
        while got.len() < n {
            let t = argmax(&logits[..vocab]);
            got.push(t);
            logits = m.forward(&[t], &mut cache, &[0]).unwrap();
        }
        if got == expected[..n] {
            matched += 1;
        } else {
            eprintln!("{model}: {:?}\n  want {:?}\n  got  {:?}", case["prompt"], &expected[..n], got);
        }
    }
    eprintln!("{model}: greedy first-16 match {matched}/{}", cases.len());
    assert!(matched + 1 >= cases.len(), "{model}: only {matched} of {} greedy cases match", cases.len());
}

#[test]
fn gemma_topk_matches_llama_cpp() {
    check_topk("gemma3-270m");
}

#[test]
fn smollm_topk_matches_llama_cpp() {
    check_topk("smollm2-135m");
}

#[test]
fn gemma_greedy_matches_llama_cpp() {
    check_greedy("gemma3-270m");
}

#[test]
fn smollm_greedy_matches_llama_cpp() {
    check_greedy("smollm2-135m");
}
