//! PEFT adapter directories: `adapter_config.json` and `adapter_model.safetensors`
//! with tensors `base_model.model.<module>.lora_A.weight` (`[r, in]`) and
//! `.lora_B.weight` (`[out, r]`); embeddings as `lora_embedding_A` (`[r, vocab]`) and
//! `lora_embedding_B` (`[d_model, r]`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value as Json};

use super::{LoraAdapter, LoraTensor, Target};
use crate::hf_names::{self, Fixup};
use crate::{Error, ModelConfig, Result};
use hearth_lineage::{Provenance, METADATA_KEY};

const CONFIG: &str = "adapter_config.json";
const WEIGHTS: &str = "adapter_model.safetensors";
const PREFIX: &str = "base_model.model.";

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::Adapter {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The settings of `adapter_config.json` that decide the scales.
struct PeftConfig {
    alpha: f64,
    rslora: bool,
    alpha_pattern: Vec<(String, f64)>,
    base_model: Option<String>,
}

fn read_config(path: &Path) -> Result<PeftConfig> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let v: Json =
        serde_json::from_str(&text).map_err(|e| bad(path, format!("not valid JSON: {e}")))?;
    let get = |k: &str| v.get(k).filter(|x| !x.is_null());
    if let Some(t) = get("peft_type").and_then(Json::as_str) {
        if t != "LORA" {
            return Err(bad(path, format!("peft_type is `{t}`; only LORA is read")));
        }
    }
    for (key, what) in [
        ("use_dora", "DoRA adapters (`use_dora`) are not supported"),
        (
            "fan_in_fan_out",
            "`fan_in_fan_out` (Conv1D weights) is not supported",
        ),
    ] {
        if get(key).and_then(Json::as_bool) == Some(true) {
            return Err(bad(path, what));
        }
    }
    if let Some(b) = get("bias").and_then(Json::as_str) {
        if b != "none" {
            return Err(bad(
                path,
                format!("bias `{b}`: adapters that train biases are not supported"),
            ));
        }
    }
    let alpha = get("lora_alpha")
        .and_then(Json::as_f64)
        .ok_or_else(|| bad(path, "`lora_alpha` is missing or not a number"))?;
    let alpha_pattern = match get("alpha_pattern") {
        None => Vec::new(),
        Some(Json::Object(m)) => m
            .iter()
            .map(|(k, x)| {
                x.as_f64()
                    .map(|a| (k.clone(), a))
                    .ok_or_else(|| bad(path, format!("alpha_pattern `{k}` is not a number")))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(bad(path, "`alpha_pattern` is not an object")),
    };
    Ok(PeftConfig {
        alpha,
        rslora: get("use_rslora").and_then(Json::as_bool).unwrap_or(false),
        alpha_pattern,
        base_model: get("base_model_name_or_path")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

/// Whether a PEFT pattern key names `module` (the whole name or a dotted suffix).
fn pattern_matches(key: &str, module: &str) -> bool {
    module == key || module.ends_with(&format!(".{key}"))
}

/// One tensor of the file, as f32, with its shape.
fn tensor_f32(path: &Path, name: &str, st: &SafeTensors<'_>) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = st
        .tensor(name)
        .map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
    let b = t.data();
    let kind = match t.dtype() {
        Dtype::F32 => super::Float::F32,
        Dtype::F16 => super::Float::F16,
        Dtype::BF16 => super::Float::BF16,
        other => {
            return Err(bad(
                path,
                format!("tensor `{name}` is {other:?}; F32, F16 and BF16 are read"),
            ))
        }
    };
    let v = super::floats(b, kind);
    Ok((t.shape().to_vec(), v))
}

/// Which half of a pair a tensor name is: (module, is_a, is_embedding).
fn split_name(name: &str) -> Option<(&str, bool, bool)> {
    let rest = name.strip_prefix(PREFIX).unwrap_or(name);
    for (suffix, is_a, emb) in [
        (".lora_A.weight", true, false),
        (".lora_B.weight", false, false),
        (".lora_A.default.weight", true, false),
        (".lora_B.default.weight", false, false),
        (".lora_embedding_A", true, true),
        (".lora_embedding_B", false, true),
    ] {
        if let Some(m) = rest.strip_suffix(suffix) {
            return Some((m, is_a, emb));
        }
    }
    None
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

type Half = (Vec<usize>, Vec<f32>);

pub(super) fn read(dir: &Path, base: &ModelConfig) -> Result<LoraAdapter> {
    let cfg_path = dir.join(CONFIG);
    let st_path = dir.join(WEIGHTS);
    if !cfg_path.is_file() {
        return Err(bad(
            dir,
            format!("`{CONFIG}` is missing: not a PEFT adapter"),
        ));
    }
    if !st_path.is_file() {
        let what = if dir.join("adapter_model.bin").is_file() {
            format!("only `adapter_model.bin` (pickle) is there; save the adapter with safe_serialization=True to get `{WEIGHTS}`")
        } else {
            format!("`{WEIGHTS}` is missing")
        };
        return Err(bad(dir, what));
    }
    let cfg = read_config(&cfg_path)?;
    let bytes = std::fs::read(&st_path).map_err(io(&st_path))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(&st_path, format!("bad safetensors file: {e}")))?;
    let arch = base.architecture.as_str();
    let mut halves: BTreeMap<String, (Option<Half>, Option<Half>, bool)> = BTreeMap::new();
    for name in st.names() {
        let (module, is_a, emb) = split_name(name).ok_or_else(|| {
            bad(
                &st_path,
                format!(
                    "tensor `{name}` is not a LoRA A/B matrix (full weights of \
                     modules_to_save, DoRA magnitudes and biases are not supported)"
                ),
            )
        })?;
        let entry = halves.entry(module.to_string()).or_default();
        let t = tensor_f32(&st_path, name, &st)?;
        if is_a {
            entry.0 = Some(t);
        } else {
            entry.1 = Some(t);
        }
        entry.2 = emb;
    }
    let mut out = LoraAdapter::new(arch);
    out.base_model = cfg.base_model.clone();
    out.source = Some(dir.to_path_buf());
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(&st_path, format!("bad safetensors header: {e}")))?;
    if let Some(record) = meta.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)) {
        out.provenance =
            Some(Provenance::from_json(record).map_err(|e| bad(&st_path, e.to_string()))?);
    }
    for (module, (a, b, emb)) in halves {
        let (Some((sa, a)), Some((sb, b))) = (a, b) else {
            return Err(bad(
                &st_path,
                format!("module `{module}` has only one of its A and B matrices"),
            ));
        };
        let gguf = hf_names::to_gguf(arch, &format!("{module}.weight"))
            .filter(|g| Target::parse(g).is_some())
            .ok_or_else(|| {
                bad(
                    &st_path,
                    format!("module `{module}` is not a {arch} weight hearth can apply LoRA to"),
                )
            })?;
        let shape_err = || {
            bad(
                &st_path,
                format!("module `{module}`: A is {sa:?} and B is {sb:?}, not [r, in] and [out, r]"),
            )
        };
        if sa.len() != 2 || sb.len() != 2 {
            return Err(shape_err());
        }
        let mut t = if emb {
            // A [r, vocab], B [d, r]: ΔE[vocab, d] = (B A)ᵀ = Aᵀ Bᵀ.
            let (rank, vocab, d) = (sa[0], sa[1], sb[0]);
            if sb[1] != rank {
                return Err(shape_err());
            }
            LoraTensor {
                rows: vocab,
                cols: d,
                rank,
                a: transpose(&b, d, rank),
                b: transpose(&a, rank, vocab),
                scale: 0.0,
            }
        } else {
            let (rank, cols, rows) = (sa[0], sa[1], sb[0]);
            if sb[1] != rank {
                return Err(shape_err());
            }
            LoraTensor {
                rows,
                cols,
                rank,
                a,
                b,
                scale: 0.0,
            }
        };
        let alpha = cfg
            .alpha_pattern
            .iter()
            .find(|(k, _)| pattern_matches(k, &module))
            .map_or(cfg.alpha, |(_, a)| *a);
        let r = t.rank as f64;
        t.scale = (if cfg.rslora {
            alpha / r.sqrt()
        } else {
            alpha / r
        }) as f32;
        let fix = hf_names::fixup(arch, &gguf, base.n_heads, base.n_kv_heads);
        if let Fixup::RopeRows(_) = fix {
            hf_names::apply(fix, &mut t.b, t.rank, true);
        }
        out.tensors.insert(gguf, t);
    }
    out.check(base)?;
    Ok(out)
}

pub(super) fn write(a: &LoraAdapter, dir: &Path, base: &ModelConfig) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let arch = base.architecture.as_str();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut targets = BTreeSet::new();
    let mut pattern: Vec<(String, usize, f32)> = Vec::new();
    for (name, t) in &a.tensors {
        let module = hf_names::to_hf(arch, name)
            .and_then(|h| h.strip_suffix(".weight").map(str::to_string))
            .ok_or_else(|| a.error(format!("no Hugging Face name known for `{name}`")))?;
        targets.insert(module.rsplit('.').next().unwrap_or(&module).to_string());
        pattern.push((module.clone(), t.rank, t.scale));
        let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        if Target::parse(name) == Some(Target::Embedding) {
            // Back to PEFT's A [r, vocab] = bᵀ and B [d, r] = aᵀ.
            let pa = transpose(&t.b, t.rows, t.rank);
            let pb = transpose(&t.a, t.rank, t.cols);
            tensors.push((
                format!("{PREFIX}{module}.lora_embedding_A"),
                vec![t.rank, t.rows],
                le(&pa),
            ));
            tensors.push((
                format!("{PREFIX}{module}.lora_embedding_B"),
                vec![t.cols, t.rank],
                le(&pb),
            ));
        } else {
            let mut b = t.b.clone();
            let fix = hf_names::fixup(arch, name, base.n_heads, base.n_kv_heads);
            if let Fixup::RopeRows(_) = fix {
                hf_names::apply(fix, &mut b, t.rank, false);
            }
            tensors.push((
                format!("{PREFIX}{module}.lora_A.weight"),
                vec![t.rank, t.cols],
                le(&t.a),
            ));
            tensors.push((
                format!("{PREFIX}{module}.lora_B.weight"),
                vec![t.rows, t.rank],
                le(&b),
            ));
        }
    }
    // The most common (rank, scale) is the default; the others go to the patterns.
    let mut counts: HashMap<(usize, u32), usize> = HashMap::new();
    for (_, r, s) in &pattern {
        *counts.entry((*r, s.to_bits())).or_default() += 1;
    }
    let (r, scale) = counts
        .into_iter()
        .max_by_key(|&((r, s), n)| (n, std::cmp::Reverse((r, s))))
        .map_or((8, 1.0), |((r, s), _)| (r, f32::from_bits(s)));
    let mut rank_pattern = serde_json::Map::new();
    let mut alpha_pattern = serde_json::Map::new();
    for (m, rk, s) in &pattern {
        if (*rk, s.to_bits()) != (r, scale.to_bits()) {
            rank_pattern.insert(m.clone(), json!(rk));
            alpha_pattern.insert(m.clone(), json!(f64::from(*s) * *rk as f64));
        }
    }
    // Training-time dropout, as PEFT records it: the fine-tune's record has it.
    let dropout = a
        .provenance
        .as_ref()
        .and_then(|p| p.parameters.get("dropout"))
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or(0.0);
    let mut config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": a.base_model.clone().unwrap_or_default(),
        "r": r,
        "lora_alpha": f64::from(scale) * r as f64,
        "lora_dropout": dropout,
        "bias": "none",
        "fan_in_fan_out": false,
        "use_rslora": false,
        "use_dora": false,
        "inference_mode": true,
        "target_modules": targets.into_iter().collect::<Vec<_>>(),
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
    });
    let mut meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    if let Some(p) = &a.provenance {
        meta.insert(METADATA_KEY.to_string(), p.to_json());
        config[METADATA_KEY] = serde_json::from_str(&p.to_json()).unwrap_or_default();
    }
    let cfg_path = dir.join(CONFIG);
    let text = serde_json::to_string_pretty(&config).unwrap_or_default();
    std::fs::write(&cfg_path, text + "\n").map_err(io(&cfg_path))?;
    let st_path = dir.join(WEIGHTS);
    let views = tensors
        .iter()
        .map(|(n, shape, data)| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (n.clone(), v))
                .map_err(|e| a.error(format!("tensor `{n}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, Some(meta), &st_path)
        .map_err(|e| bad(&st_path, format!("cannot write: {e}")))
}
