//! A GGUF model written as a Hugging Face style directory: every tensor dequantized to
//! F32, F16 or BF16 in one `model.safetensors` (streamed, one tensor in memory at a
//! time), `config.json`, `tokenizer.json` + `tokenizer_config.json` built from the GGUF
//! vocabulary, and a README whose front matter names the licence.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use hearth_gguf::{GgmlType, GgufFile};
use hearth_lineage::{Provenance, METADATA_KEY};
use hearth_model::ModelConfig;
use serde_json::{json, Value as Json};

use crate::hf_names;
use crate::source::sha256_files;
use crate::write_gguf::ProgressFn;
use crate::{codec, tokenizer_json, Error, Result};

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of `model.safetensors`.
    pub weight_bytes: u64,
}

/// Writes `gguf` as a directory `out` with weights stored as `dtype` (F32, F16, BF16).
/// The directory appears under its name only when complete.
pub fn export(
    gguf: &Path,
    out: &Path,
    dtype: GgmlType,
    tool_version: &str,
    progress: ProgressFn<'_>,
) -> Result<ExportSummary> {
    let st_name = match dtype {
        GgmlType::F32 => "F32",
        GgmlType::F16 => "F16",
        GgmlType::BF16 => "BF16",
        other => {
            return Err(Error::InvalidArgument(format!(
                "safetensors are written as F32, F16 or BF16, not {other}"
            )))
        }
    };
    if out.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists already: choose a new directory",
            out.display()
        )));
    }
    let f = GgufFile::open(gguf)?;
    let cfg = hearth_model::config_from_gguf(&f)?;
    let arch = cfg.architecture.clone();
    let tmp = tmp_dir(out);
    std::fs::create_dir_all(&tmp).map_err(Error::io(&tmp))?;
    let result = (|| {
        let license = f
            .str_opt("general.license")?
            .or(f.str_opt("general.license.name")?)
            .map(str::to_string);
        let previous = f
            .str_opt(METADATA_KEY)?
            .map(Provenance::from_json)
            .transpose()
            .map_err(|e| Error::format(gguf, e.to_string()))?;
        let provenance = Provenance {
            operation: "convert".into(),
            parameters: BTreeMap::from([
                ("to".to_string(), "safetensors".to_string()),
                ("dtype".to_string(), st_name.to_string()),
            ]),
            source_file: file_name(gguf),
            source_sha256: sha256_files(&[gguf.to_path_buf()])?,
            license: license.clone(),
            tool: "hearth".into(),
            tool_version: tool_version.into(),
            previous: previous.map(Box::new),
        };
        let tied = f.tensor("output.weight").is_none();
        write_json(
            &tmp.join("config.json"),
            &config_json(&cfg, tied, st_name, &f)?,
        )?;
        let (tok, tok_cfg) = tokenizer_json::export(&f)?;
        write_json(&tmp.join("tokenizer.json"), &tok)?;
        write_json(&tmp.join("tokenizer_config.json"), &tok_cfg)?;
        let readme = format!(
            "---\nlicense: {}\nlibrary_name: transformers\n---\n\nConverted from `{}` by hearth {tool_version}.\n",
            license.as_deref().unwrap_or("unknown"),
            file_name(gguf)
        );
        let rp = tmp.join("README.md");
        std::fs::write(&rp, readme).map_err(Error::io(&rp))?;
        write_safetensors(
            &f,
            &cfg,
            &tmp.join("model.safetensors"),
            dtype,
            st_name,
            &provenance,
            progress,
        )
    })();
    match result {
        Ok(s) => {
            std::fs::rename(&tmp, out).map_err(Error::io(out))?;
            tracing::info!(arch, tensors = s.tensors, "wrote {}", out.display());
            Ok(s)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn tmp_dir(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    out.with_file_name(name)
}

fn write_json(path: &Path, v: &Json) -> Result<()> {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    std::fs::write(path, text).map_err(Error::io(path))
}

fn config_json(c: &ModelConfig, tied: bool, dtype: &str, f: &GgufFile) -> Result<Json> {
    let bos = f.u64_opt("tokenizer.ggml.bos_token_id")?;
    let eos = f.u64_opt("tokenizer.ggml.eos_token_id")?;
    let global = c
        .layers
        .iter()
        .find(|l| l.window.is_none())
        .unwrap_or(&c.layers[0]);
    let mut v = json!({
        "hidden_size": c.d_model,
        "intermediate_size": c.ffn_dim,
        "num_hidden_layers": c.n_layers(),
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "max_position_embeddings": c.context_length,
        "rms_norm_eps": c.rms_eps,
        "rope_theta": global.rope_base,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": tied,
        "torch_dtype": match dtype { "F32" => "float32", "F16" => "float16", _ => "bfloat16" },
        "bos_token_id": bos,
        "eos_token_id": eos,
    });
    let o = v
        .as_object_mut()
        .ok_or_else(|| Error::InvalidArgument("config".into()))?;
    if let Some(name) = f.str_opt("general.name")? {
        o.insert("_name_or_path".into(), json!(name));
    }
    if global.rope_pos_scale != 1.0 {
        o.insert(
            "rope_scaling".into(),
            json!({"rope_type": "linear", "factor": 1.0 / global.rope_pos_scale}),
        );
    }
    if c.architecture == "gemma3" {
        o.insert("architectures".into(), json!(["Gemma3ForCausalLM"]));
        o.insert("model_type".into(), json!("gemma3_text"));
        o.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
        o.insert("query_pre_attn_scalar".into(), json!(c.head_dim));
        o.insert("sliding_window".into(), json!(c.sliding_window()));
        let local = c
            .layers
            .iter()
            .find(|l| l.window.is_some())
            .map_or(10_000.0, |l| l.rope_base);
        o.insert("rope_local_base_freq".into(), json!(local));
        let types: Vec<&str> = c
            .layers
            .iter()
            .map(|l| {
                if l.window.is_some() {
                    "sliding_attention"
                } else {
                    "full_attention"
                }
            })
            .collect();
        o.insert("layer_types".into(), json!(types));
    } else {
        o.insert("architectures".into(), json!(["LlamaForCausalLM"]));
        o.insert("model_type".into(), json!("llama"));
        o.insert("hidden_act".into(), json!("silu"));
    }
    Ok(v)
}

/// Writes the safetensors file by hand so each tensor is produced, written and dropped
/// in turn (the format: u64 header length, JSON header, then the data).
fn write_safetensors(
    f: &GgufFile,
    cfg: &ModelConfig,
    path: &Path,
    dtype: GgmlType,
    st_name: &str,
    provenance: &Provenance,
    progress: ProgressFn<'_>,
) -> Result<ExportSummary> {
    let arch = cfg.architecture.as_str();
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        json!({"format": "pt", METADATA_KEY: provenance.to_json()}),
    );
    let mut plan = Vec::new();
    let mut offset = 0u64;
    for t in f.tensors() {
        let name = hf_names::to_hf(arch, &t.name).ok_or_else(|| Error::Tensor {
            tensor: t.name.clone(),
            what: format!("no Hugging Face name known for this {arch} tensor"),
        })?;
        let n = t.n_elements() * (dtype.block_bytes() as u64);
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        header.insert(
            name.clone(),
            json!({"dtype": st_name, "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
        plan.push(t);
    }
    let mut head = serde_json::to_vec(&Json::Object(header)).unwrap_or_default();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let io = Error::io(path);
    let file = std::fs::File::create(path).map_err(Error::io(path))?;
    let mut w = BufWriter::new(file);
    let mut write = |b: &[u8]| w.write_all(b);
    write(&(head.len() as u64).to_le_bytes())
        .and_then(|_| write(&head))
        .map_err(Error::io(path))?;
    let total: u64 = plan.iter().map(|t| t.n_elements() * 4).sum();
    let mut done = 0u64;
    for (i, t) in plan.iter().enumerate() {
        let cols = t.dims[0] as usize;
        let mut v = codec::decode(&t.name, t.dtype, f.tensor_data(t), cols)?;
        let fix = hf_names::fixup(arch, &t.name, cfg.n_heads, cfg.n_kv_heads);
        hf_names::apply(fix, &mut v, cols, false);
        let bytes = codec::encode(&t.name, dtype, &v, cols)?;
        w.write_all(&bytes).map_err(Error::io(path))?;
        done += t.n_elements() * 4;
        progress(i + 1, plan.len(), done, total, &t.name);
    }
    let file = w
        .into_inner()
        .map_err(|e| Error::io(path)(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(ExportSummary {
        tensors: plan.len(),
        weight_bytes: offset + 8 + head.len() as u64,
    })
}
