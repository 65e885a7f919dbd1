//! `hearth merge`: a LoRA adapter folded into its base model's weights.
//!
//! Each weight the adapter changes is decoded to f32, gets `scale · B · A` added, and
//! is encoded again as its original type (or as `--type` asks); every other tensor is
//! copied byte for byte unless `--type` gives it another type. The file carries a
//! provenance record naming the base, the adapter and both hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, TensorSpec, Value};
use hearth_lineage::{Provenance, METADATA_KEY};
use hearth_model::lora::Target;
use hearth_model::LoraAdapter;

use crate::recipe::{type_for, Layout, Scheme};
use crate::source::{sha256_files, GgufSource, TensorSource};
use crate::write_gguf::{ProgressFn, WriteSummary};
use crate::{codec, Error, Result};

/// Settings of [`merge`].
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The types of the output (`None`: every tensor keeps its type).
    pub scheme: Option<Scheme>,
    /// Tool version for the provenance record.
    pub tool_version: String,
}

/// The files whose bytes identify an adapter (a PEFT directory's config and weights).
fn adapter_files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        ["adapter_config.json", "adapter_model.safetensors"]
            .iter()
            .map(|f| path.join(f))
            .filter(|p| p.is_file())
            .collect()
    } else {
        vec![path.to_path_buf()]
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `base` with the adapter at `adapter` (PEFT directory or GGUF LoRA) merged
/// in, to `out`.
pub fn merge(
    base: &Path,
    adapter: &Path,
    out: &Path,
    opts: &MergeOptions,
    progress: ProgressFn<'_>,
) -> Result<WriteSummary> {
    let src = GgufSource::open(base)?;
    let cfg = hearth_model::config_from_gguf(src.file())?;
    let lora = LoraAdapter::open(adapter, &cfg)?;
    merge_adapter(&src, &lora, adapter, out, opts, progress)
}

/// [`merge`] with the base open and the adapter read (`adapter_path` is named in
/// the provenance record).
pub fn merge_adapter(
    src: &GgufSource,
    lora: &LoraAdapter,
    adapter_path: &Path,
    out: &Path,
    opts: &MergeOptions,
    progress: ProgressFn<'_>,
) -> Result<WriteSummary> {
    let f: &GgufFile = src.file();
    let tensors = src.tensors();
    let tied = f.tensor("output.weight").is_none();
    for name in lora.tensors.keys() {
        if tied
            && matches!(
                Target::parse(name),
                Some(Target::Embedding | Target::Output)
            )
        {
            return Err(Error::InvalidArgument(format!(
                "{}: the adapter changes `{name}`, but {} ties its output head to the token \
                 embedding, so merged weights cannot keep the two apart (serve it with --lora instead)",
                lora.origin_display(),
                src.path().display()
            )));
        }
        if !tensors.iter().any(|t| &t.name == name) {
            return Err(Error::InvalidArgument(format!(
                "{}: the base model has no tensor `{name}`",
                lora.origin_display()
            )));
        }
    }
    let mut metadata = src.metadata()?;
    let layout = Layout {
        n_layers: f
            .tensors()
            .iter()
            .filter(|t| t.name.ends_with(".attn_q.weight"))
            .count(),
        has_output: !tied,
    };
    let types: Vec<GgmlType> = tensors
        .iter()
        .map(|t| match opts.scheme {
            Some(s) => type_for(s, &layout, &t.name, &t.dims),
            None => t.dtype,
        })
        .collect();
    let mut parameters = BTreeMap::from([
        ("lora".to_string(), file_name(adapter_path)),
        (
            "lora_sha256".to_string(),
            sha256_files(&adapter_files(adapter_path))?,
        ),
    ]);
    if let Some(s) = opts.scheme {
        parameters.insert("type".into(), s.to_string());
    }
    let provenance = Provenance {
        operation: "merge".into(),
        parameters,
        source_file: file_name(src.path()),
        source_sha256: sha256_files(&src.content_files())?,
        license: metadata
            .iter()
            .find(|(k, _)| k == "general.license")
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string),
        tool: "hearth".into(),
        tool_version: opts.tool_version.clone(),
        previous: src.provenance()?.map(Box::new),
    };
    metadata.retain(|(k, _)| k != METADATA_KEY);
    let mut w = GgufWriter::new();
    for (k, v) in metadata {
        w.metadata(k, v);
    }
    if let Some(s) = opts.scheme {
        w.metadata("general.file_type", Value::U32(s.file_type()));
    }
    w.metadata(METADATA_KEY, Value::String(provenance.to_json()));
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .zip(&types)
        .map(|(t, &dtype)| TensorSpec {
            name: t.name.clone(),
            dims: t.dims.clone(),
            dtype,
        })
        .collect();
    let total: u64 = tensors.iter().map(|t| t.n_elements() * 4).sum();
    let mut done = 0u64;
    w.write_streamed::<Error>(out, &specs, |i, spec| {
        let t = &tensors[i];
        let delta = lora.tensors.get(&t.name);
        let data = match (delta, src.raw(i)) {
            (None, Some(raw)) if t.dtype == spec.dtype => raw.to_vec(),
            _ => {
                let mut v = src.read_f32(i)?;
                if let Some(d) = delta {
                    v.iter_mut().zip(d.delta()).for_each(|(x, y)| *x += y);
                }
                codec::encode(&t.name, spec.dtype, &v, t.dims[0] as usize)?
            }
        };
        done += t.n_elements() * 4;
        progress(i + 1, tensors.len(), done, total, &t.name);
        Ok(data)
    })?;
    let mut counts = BTreeMap::new();
    for t in &types {
        *counts.entry(t.name().to_string()).or_insert(0) += 1;
    }
    Ok(WriteSummary {
        tensors: tensors.len(),
        output_bytes: std::fs::metadata(out).map_err(Error::io(out))?.len(),
        types: counts,
    })
}

trait OriginDisplay {
    fn origin_display(&self) -> String;
}

impl OriginDisplay for LoraAdapter {
    fn origin_display(&self) -> String {
        self.source
            .as_deref()
            .map_or_else(|| "(in memory)".into(), |p| p.display().to_string())
    }
}
