//! A Hugging Face style directory read as a GGUF-shaped [`TensorSource`]: tensors
//! renamed and laid out as llama.cpp's converter does, metadata built from
//! `config.json`, the tokenizer from `tokenizer.json`.

use std::path::{Path, PathBuf};

use hearth_gguf::{GgmlType, Value};
use hearth_lineage::Provenance;

use crate::hf_dir::{HfConfig, HfDir};
use crate::hf_names::{self, Fixup};
use crate::source::{SourceTensor, TensorSource};
use crate::{tokenizer_json, Error, Result};

/// A directory as a tensor source.
pub struct HfSource {
    dir: HfDir,
    config: HfConfig,
    tensors: Vec<SourceTensor>,
    /// Index into `dir.tensors()` and fixup, per tensor.
    origin: Vec<(usize, Fixup)>,
}

impl HfSource {
    /// Opens `dir` and maps every tensor to its GGUF name.
    pub fn open(dir: &Path) -> Result<Self> {
        let dir = HfDir::open(dir)?;
        let config = dir.config()?;
        let arch = config.architecture.as_str();
        if !hearth_model::supported_architectures().contains(&arch) {
            return Err(Error::format(
                dir.path().join("config.json"),
                format!("`model_type` maps to `{arch}`, which hearth cannot convert"),
            ));
        }
        let mut entries = Vec::new();
        for (i, t) in dir.tensors().iter().enumerate() {
            let name = hf_names::to_gguf(arch, &t.name).ok_or_else(|| Error::Tensor {
                tensor: t.name.clone(),
                what: format!("no GGUF name known for this {arch} tensor"),
            })?;
            let dtype = match t.dtype.as_str() {
                "F32" => GgmlType::F32,
                "F16" => GgmlType::F16,
                "BF16" => GgmlType::BF16,
                other => {
                    return Err(Error::Tensor {
                        tensor: t.name.clone(),
                        what: format!("element type {other} (F32, F16 and BF16 are read)"),
                    })
                }
            };
            let fix = hf_names::fixup(arch, &name, config.heads, config.kv_heads);
            let dims: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
            entries.push((
                order_key(&name),
                SourceTensor { name, dims, dtype },
                (i, fix),
            ));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let (tensors, origin) = entries.into_iter().map(|(_, t, o)| (t, o)).unzip();
        Ok(Self {
            dir,
            config,
            tensors,
            origin,
        })
    }
}

/// GGUF's usual order: embedding, output norm and head, then blocks by number.
fn order_key(name: &str) -> (usize, String) {
    let layer = name
        .strip_prefix("blk.")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse::<usize>().ok());
    (layer.map_or(0, |l| l + 1), name.to_string())
}

impl TensorSource for HfSource {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn metadata(&self) -> Result<Vec<(String, Value)>> {
        let c = &self.config;
        let a = c.architecture.as_str();
        let u = |v: usize| Value::U32(v as u32);
        let mut m = vec![
            ("general.architecture".to_string(), Value::String(a.into())),
            ("general.type".into(), Value::String("model".into())),
        ];
        if let Some(n) = self.dir.name() {
            m.push(("general.name".into(), Value::String(n)));
        }
        if let Some(l) = self.dir.license() {
            m.push(("general.license".into(), Value::String(l)));
        }
        let k = |s: &str| format!("{a}.{s}");
        m.extend([
            (k("context_length"), u(c.context_length)),
            (k("embedding_length"), u(c.d_model)),
            (k("block_count"), u(c.layers)),
            (k("feed_forward_length"), u(c.ffn_dim)),
            (k("attention.head_count"), u(c.heads)),
            (k("attention.head_count_kv"), u(c.kv_heads)),
            (k("attention.key_length"), u(c.head_dim)),
            (k("attention.value_length"), u(c.head_dim)),
            (
                k("attention.layer_norm_rms_epsilon"),
                Value::F32(c.rms_eps as f32),
            ),
            (k("rope.freq_base"), Value::F32(c.rope_base as f32)),
            (k("vocab_size"), u(c.vocab_size)),
        ]);
        if a == "llama" {
            m.push((k("rope.dimension_count"), u(c.head_dim)));
        }
        if let Some(w) = c.layer_windows.iter().flatten().next() {
            m.push((k("attention.sliding_window"), u(*w)));
            let standard: Vec<bool> = (0..c.layers).map(|i| !(i + 1).is_multiple_of(6)).collect();
            let flags: Vec<bool> = c.layer_windows.iter().map(Option::is_some).collect();
            if flags != standard {
                m.push((
                    k("attention.sliding_window_pattern"),
                    Value::Array(flags.into_iter().map(Value::Bool).collect()),
                ));
            }
        }
        if let Some(f) = self
            .dir
            .config_json()
            .pointer("/rope_scaling/factor")
            .and_then(serde_json::Value::as_f64)
        {
            m.push((k("rope.scaling.type"), Value::String("linear".into())));
            m.push((k("rope.scaling.factor"), Value::F32(f as f32)));
        }
        m.extend(tokenizer_json::import(self.dir.path())?);
        Ok(m)
    }

    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_f32(&self, i: usize) -> Result<Vec<f32>> {
        let (j, fix) = self.origin[i];
        let t = &self.dir.tensors()[j];
        let mut v = self.dir.tensor_f32(t)?;
        hf_names::apply(fix, &mut v, self.tensors[i].dims[0] as usize, true);
        Ok(v)
    }

    fn raw(&self, i: usize) -> Option<&[u8]> {
        let (j, fix) = self.origin[i];
        (fix == Fixup::None).then(|| self.dir.tensor_data(&self.dir.tensors()[j]))
    }

    fn content_files(&self) -> Vec<PathBuf> {
        self.dir
            .weight_files()
            .into_iter()
            .map(Path::to_path_buf)
            .collect()
    }

    fn provenance(&self) -> Result<Option<Provenance>> {
        self.dir.provenance()
    }
}
