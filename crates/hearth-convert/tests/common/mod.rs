//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use hearth_model::Transformer;

/// The prompt whose logits tests compare.
pub const PROMPT: [u32; 12] = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33];

/// Logits at every position of [`PROMPT`].
pub fn logits(path: &Path) -> Vec<f32> {
    let m = Transformer::open(path).unwrap();
    let mut cache = m.new_cache();
    let want: Vec<usize> = (0..PROMPT.len()).collect();
    m.forward(&PROMPT, &mut cache, &want).unwrap()
}

/// `|a - b| / |a|` in the Euclidean norm.
pub fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let num: f32 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f32 = a.iter().map(|x| x * x).sum();
    (num / den).sqrt()
}

/// A cached real model, or `None` with a loud message.
pub fn real(name: &str) -> Option<PathBuf> {
    let info = hearth_hub::find_model(name)?;
    let p = hearth_hub::cache_dir().join("models").join(info.file_name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} absent (run `hearth pull {name}`)", p.display());
        None
    }
}

/// `n` greedy tokens after `prompt`, by plain argmax over hearth's logits.
pub fn greedy(path: &Path, prompt: &[u32], n: usize) -> Vec<u32> {
    let m = Transformer::open(path).unwrap();
    let mut cache = m.new_cache();
    let mut logits = m.forward(prompt, &mut cache, &[prompt.len() - 1]).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let next = logits
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > logits[b] { i } else { b }) as u32;
        out.push(next);
        logits = m.forward(&[next], &mut cache, &[0]).unwrap();
    }
    out
}

/// `n` greedy tokens from llama.cpp (llama-cpp-python in hearth's peer venv), or
/// `None` with a loud message when the venv is absent.
pub fn peer_greedy(path: &Path, prompt: &[u32], n: usize) -> Option<Vec<u32>> {
    peer_greedy_lora(path, None, prompt, n)
}

/// [`peer_greedy`] with a GGUF LoRA adapter applied at scale 1.
pub fn peer_greedy_lora(
    path: &Path,
    lora: Option<&Path>,
    prompt: &[u32],
    n: usize,
) -> Option<Vec<u32>> {
    let python = hearth_hub::cache_dir().join("peer-venv/bin/python");
    if !python.exists() {
        eprintln!(
            "SKIPPED: {} absent: llama.cpp cross-check not run",
            python.display()
        );
        return None;
    }
    let ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
    let out = std::process::Command::new(python)
        .args(["-c", PEER_GREEDY])
        .arg(path)
        .arg(ids.join(","))
        .arg(n.to_string())
        .args(lora)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Greedy decoding inside llama.cpp; extra buffer types (AMX repacking) off, as
/// `hearth bench` does, because they crash on some virtual machines.
const PEER_GREEDY: &str = r#"
import json, sys
import numpy as np
import llama_cpp
import llama_cpp.llama as L
from llama_cpp import Llama
_defaults = llama_cpp.llama_model_default_params
def _no_extra():
    p = _defaults(); p.use_extra_bufts = False; return p
L.llama_cpp.llama_model_default_params = _no_extra
path, ids, n = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3])
lora = sys.argv[4] if len(sys.argv) > 4 else None
llm = Llama(model_path=path, n_ctx=len(ids) + n + 8, n_threads=2, verbose=False, logits_all=True, lora_path=lora)
out = []
llm.eval(ids)
for _ in range(n):
    t = int(np.array(llm.eval_logits[-1]).argmax())
    out.append(t)
    llm.eval([t])
print(json.dumps(out))
"#;
