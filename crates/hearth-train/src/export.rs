//! Trained adapters as files, through hearth-model's [`LoraAdapter`] writers: PEFT
//! (`adapter_config.json` + `adapter_model.safetensors`, PEFT's tensor names, Hugging
//! Face row order for llama's `q_proj`/`k_proj`) and llama.cpp's GGUF LoRA, both
//! carrying a provenance record: the base model's file, hash and licence, the data's
//! hash and the hyper-parameters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth_convert::source::sha256_files;
use hearth_gguf::GgufFile;
use hearth_lineage::{Provenance, METADATA_KEY};
use hearth_model::lora::{LoraAdapter, LoraTensor};
use hearth_model::ModelConfig;

use crate::lora::LoraParams;
use crate::{Error, Result};

/// PEFT's weight file name.
pub const PEFT_WEIGHTS: &str = "adapter_model.safetensors";
/// PEFT's config file name.
pub const PEFT_CONFIG: &str = "adapter_config.json";
/// The GGUF LoRA file name hearth writes beside them.
pub const GGUF_ADAPTER: &str = "adapter.gguf";

/// The files a fine-tune's record points at.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The base model file.
    pub base: &'a Path,
    /// Training (and validation) data files.
    pub data: &'a [PathBuf],
    /// `hearth`'s version.
    pub tool_version: &'a str,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The record of a fine-tune: the base model's file name, hash and licence (and its
/// own record, if it has one), `parameters` plus the data files' names and hash.
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
    parameters.insert("data_sha256".into(), sha256_files(origin.data)?);
    let names: Vec<String> = origin.data.iter().map(|p| file_name(p)).collect();
    parameters.insert("data_files".into(), names.join(","));
    Ok(Provenance {
        operation: "finetune".into(),
        parameters,
        source_file: file_name(origin.base),
        source_sha256: sha256_files(&[origin.base.to_path_buf()])?,
        license,
        tool: "hearth".into(),
        tool_version: origin.tool_version.into(),
        previous: previous.map(Box::new),
    })
}

/// The trained pairs as a [`LoraAdapter`] (GGUF names and row order, as trained).
pub fn to_adapter(
    lora: &LoraParams,
    model: &ModelConfig,
    base_name: Option<String>,
    record: Option<Provenance>,
) -> Result<LoraAdapter> {
    let mut out = LoraAdapter::new(model.architecture.clone());
    out.base_model = base_name;
    out.provenance = record;
    let scale = lora.config().scale();
    for p in lora.pairs() {
        let values = |v: &candle_core::Var| -> Result<Vec<f32>> {
            Ok(v.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let (rows, cols) = p.target.shape(model);
        out.tensors.insert(
            format!("blk.{}.{}.weight", p.layer, p.target.gguf_name()),
            LoraTensor {
                rows,
                cols,
                rank: lora.config().rank,
                a: values(&p.a)?,
                b: values(&p.b)?,
                scale,
            },
        );
    }
    out.check(model)?;
    Ok(out)
}

/// Writes the PEFT files into `dir` and the GGUF LoRA file `dir/adapter.gguf`;
/// returns the paths of the PEFT weights and the GGUF file.
pub fn write_adapters(
    dir: &Path,
    adapter: &LoraAdapter,
    model: &ModelConfig,
) -> Result<(PathBuf, PathBuf)> {
    adapter.write_peft(dir, model)?;
    let gguf = dir.join(GGUF_ADAPTER);
    adapter.write_gguf_lora(&gguf)?;
    Ok((dir.join(PEFT_WEIGHTS), gguf))
}
