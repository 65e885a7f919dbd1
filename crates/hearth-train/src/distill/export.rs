//! The student as a GGUF model file that `hearth generate` and `hearth perplexity`
//! load directly: the teacher's metadata (tokenizer and chat template included) with
//! the student's shape, its weights as F32, F16 or any quantization scheme of
//! hearth-convert, and a provenance record.

use std::collections::BTreeMap;
use std::path::Path;

use hearth_convert::recipe::{type_for, Layout};
use hearth_convert::{codec, Scheme};
use hearth_gguf::{GgufWriter, TensorSpec, Value};
use hearth_lineage::{Provenance, METADATA_KEY};

use super::student::Student;
use crate::{Error, Result};

/// What [`write_student`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentFile {
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of the file.
    pub bytes: u64,
    /// Tensors per storage type.
    pub types: BTreeMap<String, usize>,
}

/// The metadata of the student's GGUF: its source file's, with the shape, name, file
/// type and provenance record replaced.
fn metadata(student: &Student, scheme: Scheme, record: &Provenance) -> Vec<(String, Value)> {
    let cfg = student.model.config();
    let src = student.model.gguf();
    let arch = cfg.architecture.as_str();
    let mut w: Vec<(String, Value)> = src
        .metadata()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                METADATA_KEY | "general.file_type" | "general.quantization_version"
            )
        })
        .cloned()
        .collect();
    let mut set = |k: String, v: Value| {
        w.retain(|(key, _)| *key != k);
        w.push((k, v));
    };
    let u = |v: usize| Value::U32(v as u32);
    set(format!("{arch}.block_count"), u(cfg.n_layers()));
    set(format!("{arch}.embedding_length"), u(cfg.d_model));
    set(format!("{arch}.feed_forward_length"), u(cfg.ffn_dim));
    set(format!("{arch}.attention.head_count"), u(cfg.n_heads));
    set(format!("{arch}.attention.head_count_kv"), u(cfg.n_kv_heads));
    set(format!("{arch}.attention.key_length"), u(cfg.head_dim));
    set(format!("{arch}.attention.value_length"), u(cfg.head_dim));
    set(format!("{arch}.rope.dimension_count"), u(cfg.rope_dim));
    if cfg.layers.iter().any(|l| l.window.is_some()) {
        // Which layers slide: one flag per layer, as newer converters write it.
        let flags = cfg
            .layers
            .iter()
            .map(|l| Value::Bool(l.window.is_some()))
            .collect();
        set(
            format!("{arch}.attention.sliding_window_pattern"),
            Value::Array(flags),
        );
    }
    let name = src.str_opt("general.name").ok().flatten().unwrap_or(arch);
    set(
        "general.name".into(),
        Value::String(format!("{name} (distilled, {} layers)", cfg.n_layers())),
    );
    set("general.file_type".into(), Value::U32(scheme.file_type()));
    set("general.quantization_version".into(), Value::U32(2));
    set(METADATA_KEY.into(), Value::String(record.to_json()));
    w
}

/// Writes `student` to `out` with the types `scheme` chooses (F32 keeps the trained
/// values exactly).
pub fn write_student(
    student: &Student,
    out: &Path,
    scheme: Scheme,
    record: &Provenance,
) -> Result<StudentFile> {
    let mut weights = student.model.w.clone();
    let tensors: Vec<(String, candle_core::Tensor)> = weights
        .named()
        .into_iter()
        .map(|(n, t)| (n, t.clone()))
        .collect();
    let layout = Layout {
        n_layers: student.model.config().n_layers(),
        has_output: !weights.tied,
    };
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|(name, t)| {
            let dims: Vec<u64> = t.dims().iter().rev().map(|&d| d as u64).collect();
            TensorSpec {
                dtype: type_for(scheme, &layout, name, &dims),
                name: name.clone(),
                dims,
            }
        })
        .collect();
    let mut w = GgufWriter::new();
    for (k, v) in metadata(student, scheme, record) {
        w.metadata(k, v);
    }
    w.write_streamed::<Error>(out, &specs, |i, spec| {
        let values = tensors[i]
            .1
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(codec::encode(
            &spec.name,
            spec.dtype,
            &values,
            spec.dims[0] as usize,
        )?)
    })?;
    let mut types = BTreeMap::new();
    for s in &specs {
        *types.entry(s.dtype.name().to_string()).or_insert(0) += 1;
    }
    Ok(StudentFile {
        tensors: specs.len(),
        bytes: std::fs::metadata(out).map_err(Error::io(out))?.len(),
        types,
    })
}
