//! What a model is, read from a GGUF file or a Hugging Face style directory: the one
//! summary `inspect`, the memory estimate and the verdicts work from.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_gguf::{GgmlType, GgufFile};
use hearth_lineage::{Provenance, METADATA_KEY};
use serde::Serialize;

use crate::hf_dir::HfDir;
use crate::{Error, Result};

/// Where the model's weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// One GGUF file.
    Gguf,
    /// `config.json` + `*.safetensors` (+ `tokenizer.json`).
    SafetensorsDir,
}

/// Tensors of one storage type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeStats {
    /// The type's name (`Q4_K`, `F32`, `BF16`, ...).
    pub dtype: String,
    /// Tensors stored as this type.
    pub tensors: usize,
    /// Elements in them.
    pub parameters: u64,
    /// Bytes they take.
    pub bytes: u64,
}

/// A model's shape, licence and storage.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFacts {
    /// How it is stored.
    pub format: SourceFormat,
    /// `general.name` or the directory name.
    pub name: Option<String>,
    /// Architecture in GGUF terms (`llama`, `gemma3`).
    pub architecture: String,
    /// Elements in all tensors.
    pub parameters: u64,
    /// Blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Residual width.
    pub d_model: usize,
    /// Feed-forward width.
    pub ffn_dim: usize,
    /// Positions the model was trained for.
    pub context_length: usize,
    /// The sliding window of local layers, if any.
    pub sliding_window: Option<usize>,
    /// Per layer: `Some(window)` for sliding-window layers.
    pub layer_windows: Vec<Option<usize>>,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Licence identifier from the metadata.
    pub license: Option<String>,
    /// Tensors by storage type, most bytes first.
    pub tensor_types: Vec<TypeStats>,
    /// Bytes of all tensor data.
    pub weight_bytes: u64,
    /// Bytes on disk (the whole GGUF file, or all safetensors files).
    pub file_bytes: u64,
    /// Whether hearth runs this model, and if not why.
    pub runs_here: std::result::Result<(), String>,
    /// The provenance record, when hearth wrote the file.
    pub provenance: Option<Provenance>,
}

impl ModelFacts {
    /// Reads a GGUF file or a Hugging Face style directory.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            Self::from_hf_dir(&HfDir::open(path)?)
        } else {
            Self::from_gguf(&GgufFile::open(path)?)
        }
    }

    /// Reads an open GGUF file.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch = f.str("general.architecture")?.to_string();
        let mut types = TypeTally::default();
        for t in f.tensors() {
            types.add(t.dtype.name(), t.n_elements(), t.n_bytes());
        }
        let provenance = match f.str_opt(METADATA_KEY)? {
            Some(s) => {
                Some(Provenance::from_json(s).map_err(|e| Error::format(f.path(), e.to_string()))?)
            }
            None => None,
        };
        let license = f
            .str_opt("general.license")?
            .or(f.str_opt("general.license.name")?)
            .map(str::to_string);
        let name = f.str_opt("general.name")?.map(str::to_string);
        let (parameters, weight_bytes, tensor_types) = types.finish();
        let mut facts = ModelFacts {
            format: SourceFormat::Gguf,
            name,
            architecture: arch.clone(),
            parameters,
            layers: 0,
            heads: 0,
            kv_heads: 0,
            head_dim: 0,
            d_model: 0,
            ffn_dim: 0,
            context_length: 0,
            sliding_window: None,
            layer_windows: Vec::new(),
            vocab_size: 0,
            license,
            tensor_types,
            weight_bytes,
            file_bytes: f.file_len(),
            runs_here: Ok(()),
            provenance,
        };
        match hearth_model::config_from_gguf(f) {
            Ok(c) => {
                facts.layers = c.n_layers();
                facts.heads = c.n_heads;
                facts.kv_heads = c.n_kv_heads;
                facts.head_dim = c.head_dim;
                facts.d_model = c.d_model;
                facts.ffn_dim = c.ffn_dim;
                facts.context_length = c.context_length;
                facts.sliding_window = c.sliding_window();
                facts.layer_windows = c.layers.iter().map(|l| l.window).collect();
                facts.vocab_size = c.vocab_size;
            }
            Err(e) => {
                // An architecture we do not run: read the shared keys tolerantly.
                facts.runs_here = Err(e.to_string());
                let u = |k: &str| {
                    f.u64_opt(&format!("{arch}.{k}"))
                        .ok()
                        .flatten()
                        .unwrap_or(0) as usize
                };
                facts.layers = u("block_count");
                facts.heads = u("attention.head_count");
                facts.kv_heads = f
                    .u64_opt(&format!("{arch}.attention.head_count_kv"))
                    .ok()
                    .flatten()
                    .map_or(facts.heads, |v| v as usize);
                facts.d_model = u("embedding_length");
                facts.ffn_dim = u("feed_forward_length");
                facts.context_length = u("context_length");
                facts.head_dim = match u("attention.key_length") {
                    0 => facts.d_model.checked_div(facts.heads).unwrap_or(0),
                    v => v,
                };
                let w = u("attention.sliding_window");
                facts.sliding_window = (w > 0).then_some(w);
                facts.layer_windows = vec![facts.sliding_window; facts.layers];
                facts.vocab_size = f
                    .tensor("token_embd.weight")
                    .and_then(|t| t.dims.get(1).copied())
                    .unwrap_or(0) as usize;
            }
        }
        if facts.runs_here.is_ok() {
            if let Some(t) = f.tensors().iter().find(|t| {
                matches!(
                    t.dtype,
                    GgmlType::Q8_1
                        | GgmlType::I8
                        | GgmlType::I16
                        | GgmlType::I32
                        | GgmlType::I64
                        | GgmlType::F64
                )
            }) {
                facts.runs_here = Err(format!("tensor `{}` is stored as {}", t.name, t.dtype));
            }
        }
        Ok(facts)
    }

    /// Reads an open Hugging Face style directory.
    pub fn from_hf_dir(d: &HfDir) -> Result<Self> {
        let c = d.config()?;
        let mut types = TypeTally::default();
        for t in d.tensors() {
            types.add(&t.dtype, t.n_elements, t.n_bytes);
        }
        let (parameters, weight_bytes, tensor_types) = types.finish();
        let runs_here =
            if hearth_model::supported_architectures().contains(&c.architecture.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "architecture `{}` is not one hearth runs ({})",
                    c.architecture,
                    hearth_model::supported_architectures().join(", ")
                ))
            };
        Ok(ModelFacts {
            format: SourceFormat::SafetensorsDir,
            name: d.name(),
            architecture: c.architecture.clone(),
            parameters,
            layers: c.layers,
            heads: c.heads,
            kv_heads: c.kv_heads,
            head_dim: c.head_dim,
            d_model: c.d_model,
            ffn_dim: c.ffn_dim,
            context_length: c.context_length,
            sliding_window: c.layer_windows.iter().flatten().copied().max(),
            layer_windows: c.layer_windows.clone(),
            vocab_size: c.vocab_size,
            license: d.license(),
            tensor_types,
            weight_bytes,
            file_bytes: d.file_bytes(),
            // Loading goes through GGUF: `hearth convert` writes one.
            runs_here,
            provenance: d.provenance()?,
        })
    }
}

#[derive(Default)]
struct TypeTally(BTreeMap<String, TypeStats>);

impl TypeTally {
    fn add(&mut self, dtype: &str, n: u64, bytes: u64) {
        let e = self.0.entry(dtype.to_string()).or_insert(TypeStats {
            dtype: dtype.to_string(),
            tensors: 0,
            parameters: 0,
            bytes: 0,
        });
        e.tensors += 1;
        e.parameters += n;
        e.bytes += bytes;
    }

    fn finish(self) -> (u64, u64, Vec<TypeStats>) {
        let mut v: Vec<TypeStats> = self.0.into_values().collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.bytes));
        (
            v.iter().map(|t| t.parameters).sum(),
            v.iter().map(|t| t.bytes).sum(),
            v,
        )
    }
}
