//! Hugging Face style model directories: `config.json`, `*.safetensors` weights (memory
//! mapped, headers parsed once), `tokenizer.json`, and the licence from `README.md`.

use std::path::{Path, PathBuf};

use hearth_lineage::{Provenance, METADATA_KEY};
use memmap2::Mmap;
use safetensors::SafeTensors;
use serde_json::Value as Json;

use crate::{Error, Result};

/// One tensor of a safetensors file.
#[derive(Debug, Clone)]
pub struct HfTensor {
    /// Name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// Element type as safetensors names it (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Shape, outermost first (`[rows, cols]`).
    pub shape: Vec<usize>,
    /// Elements.
    pub n_elements: u64,
    /// Bytes of data.
    pub n_bytes: u64,
    file: usize,
    start: usize,
}

/// The model shape `config.json` describes, in GGUF terms.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    /// `llama` or `gemma3` (from `model_type`).
    pub architecture: String,
    /// `hidden_size`.
    pub d_model: usize,
    /// `num_hidden_layers`.
    pub layers: usize,
    /// `num_attention_heads`.
    pub heads: usize,
    /// `num_key_value_heads` (default: `heads`).
    pub kv_heads: usize,
    /// `head_dim` (default: `hidden_size / heads`).
    pub head_dim: usize,
    /// `intermediate_size`.
    pub ffn_dim: usize,
    /// `max_position_embeddings`.
    pub context_length: usize,
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `rms_norm_eps`.
    pub rms_eps: f64,
    /// `rope_theta`.
    pub rope_base: f64,
    /// Per layer: `Some(window)` for sliding-window layers.
    pub layer_windows: Vec<Option<usize>>,
    /// `tie_word_embeddings`.
    pub tied_embeddings: bool,
}

/// An opened directory.
pub struct HfDir {
    path: PathBuf,
    config: Json,
    files: Vec<(PathBuf, Mmap)>,
    tensors: Vec<HfTensor>,
    metadata: std::collections::HashMap<String, String>,
}

impl std::fmt::Debug for HfDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfDir")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl HfDir {
    /// Opens `dir`: reads `config.json` and every `*.safetensors` header.
    pub fn open(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(Error::io(&cfg_path))?;
        let config: Json = serde_json::from_str(&text)
            .map_err(|e| Error::format(&cfg_path, format!("not valid JSON: {e}")))?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(Error::format(
                dir,
                "no *.safetensors files in the directory",
            ));
        }
        let mut files = Vec::new();
        let mut tensors = Vec::new();
        let mut metadata = std::collections::HashMap::new();
        for p in paths {
            let file = std::fs::File::open(&p).map_err(Error::io(&p))?;
            // SAFETY: read-only map; a file changed underneath us by another process
            // is outside what any reader can defend against.
            let mmap = unsafe { Mmap::map(&file) }.map_err(Error::io(&p))?;
            let (header_len, meta) = SafeTensors::read_metadata(&mmap)
                .map_err(|e| Error::format(&p, format!("bad safetensors header: {e}")))?;
            if let Some(m) = meta.metadata() {
                metadata.extend(m.clone());
            }
            let mut infos: Vec<_> = meta.tensors().into_iter().collect();
            infos.sort_by_key(|(_, i)| i.data_offsets.0);
            for (name, info) in infos {
                let n_elements = info.shape.iter().map(|&d| d as u64).product();
                tensors.push(HfTensor {
                    name,
                    dtype: format!("{:?}", info.dtype),
                    shape: info.shape.clone(),
                    n_elements,
                    n_bytes: (info.data_offsets.1 - info.data_offsets.0) as u64,
                    file: files.len(),
                    start: 8 + header_len + info.data_offsets.0,
                });
            }
            files.push((p, mmap));
        }
        Ok(Self {
            path: dir.to_path_buf(),
            config,
            files,
            tensors,
            metadata,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config.json` as parsed.
    pub fn config_json(&self) -> &Json {
        &self.config
    }

    /// Every tensor of every weight file.
    pub fn tensors(&self) -> &[HfTensor] {
        &self.tensors
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&HfTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A tensor's bytes (bounds checked by the safetensors header parser).
    pub fn tensor_data(&self, t: &HfTensor) -> &[u8] {
        &self.files[t.file].1[t.start..t.start + t.n_bytes as usize]
    }

    /// A tensor's values as f32 (F32, F16 and BF16 are read).
    pub fn tensor_f32(&self, t: &HfTensor) -> Result<Vec<f32>> {
        let b = self.tensor_data(t);
        let v = match t.dtype.as_str() {
            "F32" => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            "F16" => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            "BF16" => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::Tensor {
                    tensor: t.name.clone(),
                    what: format!("element type {other} cannot be read as floats"),
                })
            }
        };
        Ok(v)
    }

    /// Bytes of all weight files.
    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|(_, m)| m.len() as u64).sum()
    }

    /// Paths of the weight files, in name order.
    pub fn weight_files(&self) -> Vec<&Path> {
        self.files.iter().map(|(p, _)| p.as_path()).collect()
    }

    /// The `__metadata__` entries of the weight files.
    pub fn metadata(&self) -> &std::collections::HashMap<String, String> {
        &self.metadata
    }

    /// The model's name: `_name_or_path` of `config.json`, else the directory's name.
    pub fn name(&self) -> Option<String> {
        if let Some(n) = self.config.get("_name_or_path").and_then(Json::as_str) {
            return Some(n.to_string());
        }
        self.path
            .canonicalize()
            .ok()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }

    /// The licence: `license:` of README.md's front matter, else the provenance record's.
    pub fn license(&self) -> Option<String> {
        let readme = std::fs::read_to_string(self.path.join("README.md")).ok();
        let front = readme.as_deref().and_then(|r| {
            let body = r.strip_prefix("---")?;
            let end = body.find("\n---")?;
            body[..end].lines().find_map(|l| {
                let v = l.trim().strip_prefix("license:")?;
                Some(v.trim().trim_matches('"').to_string())
            })
        });
        front.or_else(|| self.provenance().ok().flatten()?.license)
    }

    /// The provenance record in the weight files' metadata.
    pub fn provenance(&self) -> Result<Option<Provenance>> {
        self.metadata
            .get(METADATA_KEY)
            .map(|s| Provenance::from_json(s).map_err(|e| Error::format(&self.path, e.to_string())))
            .transpose()
    }

    /// The model shape from `config.json` (the `text_config` of multimodal configs).
    pub fn config(&self) -> Result<HfConfig> {
        let path = self.path.join("config.json");
        let c = self.config.get("text_config").unwrap_or(&self.config);
        let top = &self.config;
        let get = |k: &str| c.get(k).or_else(|| top.get(k));
        let num = |k: &str| -> Result<usize> {
            get(k)
                .and_then(Json::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| {
                    Error::format(&path, format!("`{k}` is missing or not a whole number"))
                })
        };
        let model_type = get("model_type").and_then(Json::as_str).unwrap_or("");
        let architecture = match model_type {
            "gemma3" | "gemma3_text" => "gemma3",
            "llama" | "mistral" | "smollm" => "llama",
            other => other,
        }
        .to_string();
        let heads = num("num_attention_heads")?;
        let d_model = num("hidden_size")?;
        let layers = num("num_hidden_layers")?;
        let window = get("sliding_window")
            .and_then(Json::as_u64)
            .map(|v| v as usize);
        let layer_windows = match (
            architecture.as_str(),
            get("layer_types").and_then(Json::as_array),
        ) {
            (_, Some(types)) => types
                .iter()
                .map(|t| {
                    (t.as_str() == Some("sliding_attention"))
                        .then_some(window)
                        .flatten()
                })
                .collect(),
            ("gemma3", None) => {
                let period = get("sliding_window_pattern")
                    .and_then(Json::as_u64)
                    .unwrap_or(6)
                    .max(1) as usize;
                (0..layers)
                    .map(|i| {
                        (!(i + 1).is_multiple_of(period))
                            .then_some(window)
                            .flatten()
                    })
                    .collect()
            }
            _ => vec![None; layers],
        };
        let tied = get("tie_word_embeddings")
            .and_then(Json::as_bool)
            .unwrap_or(architecture == "gemma3");
        Ok(HfConfig {
            architecture,
            d_model,
            layers,
            heads,
            kv_heads: get("num_key_value_heads")
                .and_then(Json::as_u64)
                .map_or(heads, |v| v as usize),
            head_dim: get("head_dim")
                .and_then(Json::as_u64)
                .map_or(d_model / heads.max(1), |v| v as usize),
            ffn_dim: num("intermediate_size")?,
            context_length: num("max_position_embeddings")?,
            vocab_size: num("vocab_size")?,
            rms_eps: get("rms_norm_eps").and_then(Json::as_f64).unwrap_or(1e-6),
            rope_base: get("rope_theta").and_then(Json::as_f64).unwrap_or(10_000.0),
            layer_windows,
            tied_embeddings: tied,
        })
    }
}
