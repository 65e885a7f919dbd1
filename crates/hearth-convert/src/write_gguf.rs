//! Writing a [`TensorSource`] as GGUF with a type per tensor: quantization, and the
//! safetensors → GGUF direction of `convert`. One tensor is in memory at a time.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_gguf::{GgmlType, GgufWriter, TensorSpec, Value};
use hearth_lineage::{Provenance, METADATA_KEY};

use crate::recipe::{type_for, Layout, Scheme};
use crate::source::{sha256_files, TensorSource};
use crate::{codec, Error, Result};

/// Progress of a long job: called after each tensor with (tensors done, of total,
/// bytes read so far, of total, the tensor's name).
pub type ProgressFn<'a> = &'a mut dyn FnMut(usize, usize, u64, u64, &str);

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of the output file.
    pub output_bytes: u64,
    /// Tensors per output type.
    pub types: BTreeMap<String, usize>,
}

/// Settings of [`quantize`].
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// The scheme.
    pub scheme: Scheme,
    /// Quantize tensors that are quantized already (lossy twice).
    pub allow_requantize: bool,
    /// Tool version for the provenance record.
    pub tool_version: String,
    /// Operation name for the provenance record (`quantize`, `convert`).
    pub operation: String,
}

/// Writes `src` to `out` as GGUF with the types `scheme` chooses.
pub fn quantize(
    src: &dyn TensorSource,
    out: &Path,
    opts: &QuantizeOptions,
    progress: ProgressFn<'_>,
) -> Result<WriteSummary> {
    let mut metadata = src.metadata()?;
    let layout = layout_of(src, &metadata);
    let tensors = src.tensors();
    let types: Vec<GgmlType> = tensors
        .iter()
        .map(|t| type_for(opts.scheme, &layout, &t.name, &t.dims))
        .collect();
    if !opts.allow_requantize {
        if let Some((t, to)) = tensors.iter().zip(&types).find(|(t, to)| {
            !matches!(t.dtype, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) && t.dtype != **to
        }) {
            return Err(Error::InvalidArgument(format!(
                "{}: tensor `{}` is {} already; quantizing it to {to} loses precision twice \
                 (pass --allow-requantize, or start from an F32/F16/BF16 model)",
                src.path().display(),
                t.name,
                t.dtype
            )));
        }
    }
    let provenance = provenance_of(
        src,
        &metadata,
        &opts.operation,
        BTreeMap::from([("type".to_string(), opts.scheme.to_string())]),
        &opts.tool_version,
    )?;
    metadata.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "general.file_type" | "general.quantization_version" | METADATA_KEY
        )
    });
    let mut w = GgufWriter::new();
    for (k, v) in metadata {
        w.metadata(k, v);
    }
    w.metadata("general.file_type", Value::U32(opts.scheme.file_type()))
        .metadata("general.quantization_version", Value::U32(2))
        .metadata(METADATA_KEY, Value::String(provenance.to_json()));
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .zip(&types)
        .map(|(t, &dtype)| TensorSpec {
            name: t.name.clone(),
            dims: t.dims.clone(),
            dtype,
        })
        .collect();
    let total_bytes: u64 = tensors.iter().map(|t| t.n_elements() * 4).sum();
    let mut done_bytes = 0u64;
    w.write_streamed::<Error>(out, &specs, |i, spec| {
        let t = &tensors[i];
        let data = match src.raw(i) {
            Some(raw) if t.dtype == spec.dtype => raw.to_vec(),
            _ => {
                let values = src.read_f32(i)?;
                codec::encode(&t.name, spec.dtype, &values, t.dims[0] as usize)?
            }
        };
        done_bytes += t.n_elements() * 4;
        progress(i + 1, tensors.len(), done_bytes, total_bytes, &t.name);
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

fn layout_of(src: &dyn TensorSource, metadata: &[(String, Value)]) -> Layout {
    let arch = metadata
        .iter()
        .find(|(k, _)| k == "general.architecture")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("");
    let key = format!("{arch}.block_count");
    let n_layers = metadata
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.as_u64())
        .unwrap_or(0) as usize;
    Layout {
        n_layers,
        has_output: src.tensors().iter().any(|t| t.name == "output.weight"),
    }
}

/// The provenance record of a file written from `src` (whose metadata is `metadata`)
/// by `operation` with `parameters`: the source's name, hash, licence and own record.
pub(crate) fn provenance_of(
    src: &dyn TensorSource,
    metadata: &[(String, Value)],
    operation: &str,
    parameters: BTreeMap<String, String>,
    tool_version: &str,
) -> Result<Provenance> {
    Ok(Provenance {
        operation: operation.to_string(),
        parameters,
        source_file: src
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source_sha256: sha256_files(&src.content_files())?,
        license: license_of(metadata),
        tool: "hearth".into(),
        tool_version: tool_version.to_string(),
        previous: src.provenance()?.map(Box::new),
    })
}

fn license_of(metadata: &[(String, Value)]) -> Option<String> {
    ["general.license", "general.license.name"]
        .iter()
        .find_map(|k| metadata.iter().find(|(m, _)| m == k))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

/// Quantizes `src` for immediate use (`--quantize` at load time): writes a temporary
/// GGUF beside the system's temp files, maps it, and unlinks it at once, so the
/// mapping lives as long as the returned file and nothing is left on disk.
pub fn quantize_for_loading(
    src: &dyn TensorSource,
    scheme: Scheme,
    progress: ProgressFn<'_>,
) -> Result<hearth_gguf::GgufFile> {
    let stem = src
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = std::env::temp_dir().join(format!(
        "{stem}.{scheme}.hearth-{}.gguf",
        std::process::id()
    ));
    let opts = QuantizeOptions {
        scheme,
        allow_requantize: false,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        operation: "quantize".into(),
    };
    quantize(src, &tmp, &opts, progress)?;
    let file = hearth_gguf::GgufFile::open(&tmp);
    let _ = std::fs::remove_file(&tmp);
    Ok(file?)
}
