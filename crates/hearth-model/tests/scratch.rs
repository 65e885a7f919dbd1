mod common;
use common::*;
use hearth_model::Transformer;
fn lsm(row: &[f32]) -> Vec<f32> {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let lse = row.iter().map(|&v| ((v - max) as f64).exp()).sum::<f64>().ln() as f32 + max;
    row.iter().map(|v| v - lse).collect()
}
#[test]
fn scratch() {
    for model in ["smollm2-135m", "gemma3-270m"] {
    let m = Transformer::open(model_path(model).unwrap()).unwrap();
    let vocab = m.config().vocab_size;
    let g = golden(model, "topk.json");
    let case = &g["cases"][0];
    let ids = ids(&case["ids"]);
    let positions = case["positions"].as_array().unwrap();
    let mut cache = m.new_cache();
    let want: Vec<usize> = (0..positions.len()).collect();
    let logits = m.forward(&ids[..positions.len()], &mut cache, &want).unwrap();
    let mut sd = 0.0;
    for (j, p) in positions.iter().enumerate().take(12) {
        let l = lsm(&logits[j * vocab..(j + 1) * vocab]);
        let top5 = p["top5"].as_array().unwrap();
        let s: Vec<String> = top5.iter().map(|t| { let id = t[0].as_u64().unwrap() as usize; format!("{id}:{:+.3}", l[id] as f64 - t[1].as_f64().unwrap()) }).collect();
        sd += l[p["next_id"].as_u64().unwrap() as usize] as f64 - p["next_logprob"].as_f64().unwrap();
        eprintln!("{model} pos {j}: {}", s.join(" "));
    }
    eprintln!("mean signed diff {}", sd / 12.0);
    }
}
