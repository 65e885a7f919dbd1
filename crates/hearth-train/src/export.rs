//! Trained adapters as files: PEFT (`adapter_config.json` + `adapter_model.safetensors`
//! with PEFT's tensor names and Hugging Face row order) and GGUF LoRA (llama.cpp's
//! `convert_lora_to_gguf.py` layout), each with a provenance record naming the base
//! model's hash and licence, the data's hash and the hyper-parameters.
//!
//! Row order: training runs on GGUF weights, whose llama `q_proj`/`k_proj` rows are
//! permuted relative to Hugging Face's; PEFT files get `B` of those layers un-permuted
//! with hearth-convert's own fixup (`A` acts on the unpermuted input side), GGUF LoRA
//! files keep GGUF order as llama.cpp expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth_convert::hf_names;
use hearth_gguf::{GgmlType, GgufFile, GgufWriter, TensorToWrite, Value};
use hearth_lineage::{Provenance, METADATA_KEY};
use hearth_model::ModelConfig;
use serde_json::json;

use crate::lora::LoraParams;
use crate::st::{self, Named};
use crate::{Error, Result};

/// PEFT's weight file name.
pub const PEFT_WEIGHTS: &str = "adapter_model.safetensors";
/// PEFT's config file name.
pub const PEFT_CONFIG: &str = "adapter_config.json";
/// The GGUF LoRA file name hearth writes beside them.
pub const GGUF_ADAPTER: &str = "adapter.gguf";

/// What a provenance record of a fine-tune says beyond the hyper-parameters.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The base model file.
    pub base: &'a Path,
    /// Training (and validation) data files.
    pub data: &'a [PathBuf],
    /// `hearth`'s version.
    pub tool_version: &'a str,
}

/// The record every adapter file of a run carries: the base model's file name, hash
/// and licence (and its own record, if it has one), `parameters` plus the data hash.
pub fn provenance(
    base: &GgufFile,
    origin: &Origin<'_>,
    mut parameters: BTreeMap<String, String>,
) -> Result<Provenance> {
    let license = base
        .str_opt("general.license")?
        .or(base.str_opt("general.license.name")?)
        .map(str::to_string);
    let previous = base
        .str_opt(METADATA_KEY)?
        .map(Provenance::from_json)
        .transpose()
        .map_err(|e| Error::Checkpoint {
            path: origin.base.to_path_buf(),
            what: e.to_string(),
        })?;
    let data_hash = hearth_convert::source::sha256_files(origin.data)?;
    parameters.insert("data_sha256".into(), data_hash);
    let names: Vec<String> = origin.data.iter().map(|p| file_name(p)).collect();
    parameters.insert("data_files".into(), names.join(","));
    Ok(Provenance {
        operation: "finetune".into(),
        parameters,
        source_file: file_name(origin.base),
        source_sha256: hearth_convert::source::sha256_files(&[origin.base.to_path_buf()])?,
        license,
        tool: "hearth".into(),
        tool_version: origin.tool_version.into(),
        previous: previous.map(Box::new),
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// `(layer, GGUF stem, A [r, in], B [out, r] in GGUF order)` of every pair.
fn pairs(lora: &LoraParams) -> Result<Vec<(usize, &'static str, Named, Named)>> {
    let mut out = Vec::new();
    for p in lora.pairs() {
        let get = |v: &candle_core::Var| -> Result<Named> {
            Ok(Named {
                name: String::new(),
                shape: v.dims().to_vec(),
                values: v
                    .to_dtype(candle_core::DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            })
        };
        out.push((p.layer, p.target.gguf_name(), get(&p.a)?, get(&p.b)?));
    }
    Ok(out)
}

/// Writes `adapter_model.safetensors` and `adapter_config.json` into `dir`;
/// `base_name` goes to `base_model_name_or_path`.
pub fn write_peft(
    dir: &Path,
    lora: &LoraParams,
    model: &ModelConfig,
    base_name: &str,
    record: &Provenance,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let arch = model.architecture.as_str();
    let mut tensors = Vec::new();
    for (layer, stem, mut a, mut b) in pairs(lora)? {
        let gguf_name = format!("blk.{layer}.{stem}.weight");
        let hf = hf_names::to_hf(arch, &gguf_name)
            .and_then(|n| n.strip_suffix(".weight").map(str::to_string))
            .ok_or_else(|| Error::Config(format!("no Hugging Face name for `{gguf_name}`")))?;
        let fix = hf_names::fixup(arch, &gguf_name, model.n_heads, model.n_kv_heads);
        let r = b.shape[1];
        hf_names::apply(fix, &mut b.values, r, false);
        a.name = format!("base_model.model.{hf}.lora_A.weight");
        b.name = format!("base_model.model.{hf}.lora_B.weight");
        tensors.extend([a, b]);
    }
    let meta = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        (METADATA_KEY.to_string(), record.to_json()),
    ]);
    let weights = dir.join(PEFT_WEIGHTS);
    st::write(&weights, &tensors, meta)?;
    let c = lora.config();
    let targets: Vec<&str> = c.targets.iter().map(|t| t.peft_name()).collect();
    let config = json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_name,
        "r": c.rank,
        "lora_alpha": c.alpha,
        "lora_dropout": c.dropout,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "modules_to_save": null,
        "use_rslora": false,
        "use_dora": false,
        "layers_to_transform": null,
        "revision": null,
        METADATA_KEY: serde_json::from_str::<serde_json::Value>(&record.to_json()).unwrap_or_default(),
    });
    let cp = dir.join(PEFT_CONFIG);
    let text = serde_json::to_string_pretty(&config).unwrap_or_default();
    std::fs::write(&cp, text + "\n").map_err(Error::io(&cp))?;
    Ok(weights)
}

/// Writes a GGUF LoRA adapter (`general.type = adapter`, tensors
/// `blk.N.attn_q.weight.lora_a` / `.lora_b`, F32) to `path`.
pub fn write_gguf(
    path: &Path,
    lora: &LoraParams,
    model: &ModelConfig,
    record: &Provenance,
) -> Result<()> {
    let mut w = GgufWriter::new();
    w.metadata(
        "general.architecture",
        Value::String(model.architecture.clone()),
    )
    .metadata("general.type", Value::String("adapter".into()))
    .metadata("adapter.type", Value::String("lora".into()))
    .metadata("adapter.lora.alpha", Value::F32(lora.config().alpha))
    .metadata(METADATA_KEY, Value::String(record.to_json()));
    if let Some(l) = &record.license {
        w.metadata("general.license", Value::String(l.clone()));
    }
    for (layer, stem, a, b) in pairs(lora)? {
        for (suffix, t) in [("lora_a", a), ("lora_b", b)] {
            w.tensor(TensorToWrite {
                name: format!("blk.{layer}.{stem}.weight.{suffix}"),
                dims: t.shape.iter().rev().map(|&d| d as u64).collect(),
                dtype: GgmlType::F32,
                data: t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            });
        }
    }
    w.write(path)?;
    Ok(())
}
