//! llama.cpp's GGUF LoRA files (`convert_lora_to_gguf.py`, `src/llama-adapter.cpp`):
//! `general.type = adapter`, `adapter.type = lora`, one `adapter.lora.alpha` for the
//! file (scale = alpha / rank, or 1 when alpha is 0), tensors `<base>.lora_a` with
//! ggml dims `[in, r]` and `<base>.lora_b` with `[r, out]` — PEFT's A and B as they
//! are. The token embedding's pair is stored flipped: `lora_a` is PEFT's A transposed
//! (`[r, vocab]`) and `lora_b` PEFT's B (`[r, d_model]`).

use std::path::Path;

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, TensorToWrite, Value};

use hearth_lineage::{Provenance, METADATA_KEY};

use super::{LoraAdapter, LoraTensor, Target};
use crate::{Error, Result};

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::Adapter {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

fn values(path: &Path, f: &GgufFile, name: &str) -> Result<(usize, usize, Vec<f32>)> {
    let info = f
        .tensor(name)
        .ok_or_else(|| bad(path, format!("tensor `{name}` is missing")))?;
    if info.dims.len() != 2 {
        return Err(bad(
            path,
            format!("tensor `{name}` has dims {:?}, expected 2", info.dims),
        ));
    }
    let b = f.tensor_data(info);
    let kind = match info.dtype {
        GgmlType::F32 => super::Float::F32,
        GgmlType::F16 => super::Float::F16,
        GgmlType::BF16 => super::Float::BF16,
        other => {
            return Err(bad(
                path,
                format!("tensor `{name}` is {other}; LoRA tensors are read as F32, F16 or BF16"),
            ))
        }
    };
    let v = super::floats(b, kind);
    Ok((info.dims[0] as usize, info.dims[1] as usize, v))
}

pub(super) fn read(path: &Path) -> Result<LoraAdapter> {
    let f = GgufFile::open(path)?;
    let kind = f.str_opt("general.type")?.unwrap_or("");
    if kind != "adapter" {
        return Err(bad(
            path,
            format!("general.type is `{kind}`, expected `adapter` (is this a model file?)"),
        ));
    }
    let atype = f.str_opt("adapter.type")?.unwrap_or("");
    if atype != "lora" {
        return Err(bad(
            path,
            format!("adapter.type is `{atype}`, expected `lora`"),
        ));
    }
    let alpha = f.f64_opt("adapter.lora.alpha")?.unwrap_or(0.0) as f32;
    let mut out = LoraAdapter::new(f.str("general.architecture")?);
    out.base_model = f.str_opt("hearth.lora.base_model")?.map(str::to_string);
    out.source = Some(path.to_path_buf());
    if let Some(record) = f.str_opt(METADATA_KEY)? {
        out.provenance = Some(Provenance::from_json(record).map_err(|e| bad(path, e.to_string()))?);
    }
    for info in f.tensors() {
        let name = &info.name;
        if name.ends_with(".lora_b") {
            continue;
        }
        let Some(base) = name.strip_suffix(".lora_a") else {
            return Err(bad(
                path,
                format!("tensor `{name}` is not a `.lora_a`/`.lora_b` half (norm deltas are not supported)"),
            ));
        };
        let (a0, a1, a) = values(path, &f, name)?;
        let (b0, b1, b) = values(path, &f, &format!("{base}.lora_b"))?;
        let t = if Target::parse(base) == Some(Target::Embedding) {
            // lora_a ggml [r, vocab] = our B; lora_b ggml [r, d] = our A transposed.
            if a0 != b0 {
                return Err(bad(path, format!("`{base}`: lora_a is [{a0}, {a1}] and lora_b [{b0}, {b1}], their ranks differ")));
            }
            let (rank, vocab, d) = (a0, a1, b1);
            let mut at = vec![0.0; rank * d];
            for r in 0..d {
                for c in 0..rank {
                    at[c * d + r] = b[r * rank + c];
                }
            }
            LoraTensor {
                rows: vocab,
                cols: d,
                rank,
                a: at,
                b: a,
                scale: 0.0,
            }
        } else {
            if a1 != b0 {
                return Err(bad(path, format!("`{base}`: lora_a is [{a0}, {a1}] and lora_b [{b0}, {b1}]; lora_a must be [in, r] and lora_b [r, out]")));
            }
            LoraTensor {
                rows: b1,
                cols: a0,
                rank: a1,
                a,
                b,
                scale: 0.0,
            }
        };
        let scale = if alpha != 0.0 {
            alpha / t.rank as f32
        } else {
            1.0
        };
        out.tensors
            .insert(base.to_string(), LoraTensor { scale, ..t });
    }
    let orphan = f.tensors().iter().find(|i| {
        i.name
            .strip_suffix(".lora_b")
            .is_some_and(|b| !out.tensors.contains_key(b))
    });
    if let Some(i) = orphan {
        return Err(bad(
            path,
            format!("tensor `{}` has no matching `.lora_a`", i.name),
        ));
    }
    Ok(out)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn write(a: &LoraAdapter, path: &Path) -> Result<()> {
    let first = a
        .tensors
        .values()
        .next()
        .ok_or_else(|| a.error("it has no LoRA tensors"))?;
    let mut alpha = first.scale * first.rank as f32;
    if alpha == 0.0 {
        // llama.cpp reads alpha 0 as "scale 1"; fold the zero scale into B instead.
        alpha = first.rank as f32;
    }
    let mut w = GgufWriter::new();
    w.metadata(
        "general.architecture",
        Value::String(a.architecture.clone()),
    )
    .metadata("general.type", Value::String("adapter".into()))
    .metadata("adapter.type", Value::String("lora".into()))
    .metadata("adapter.lora.alpha", Value::F32(alpha));
    if let Some(b) = &a.base_model {
        w.metadata("hearth.lora.base_model", Value::String(b.clone()));
    }
    if let Some(p) = &a.provenance {
        w.metadata(METADATA_KEY, Value::String(p.to_json()));
        if let Some(l) = &p.license {
            w.metadata("general.license", Value::String(l.clone()));
        }
    }
    for (name, t) in &a.tensors {
        t.check()
            .map_err(|e| a.error(format!("tensor `{name}`: {e}")))?;
        let factor = t.scale / (alpha / t.rank as f32);
        let mut b = t.b.clone();
        if factor != 1.0 {
            b.iter_mut().for_each(|x| *x *= factor);
        }
        let (r, rows, cols) = (t.rank as u64, t.rows as u64, t.cols as u64);
        let (a_dims, a_data, b_dims, b_data) = if Target::parse(name) == Some(Target::Embedding) {
            let mut at = vec![0.0; t.a.len()];
            for k in 0..t.rank {
                for c in 0..t.cols {
                    at[c * t.rank + k] = t.a[k * t.cols + c];
                }
            }
            (vec![r, rows], b, vec![r, cols], at)
        } else {
            (vec![cols, r], t.a.clone(), vec![r, rows], b)
        };
        w.tensor(TensorToWrite {
            name: format!("{name}.lora_a"),
            dims: a_dims,
            dtype: GgmlType::F32,
            data: f32_bytes(&a_data),
        })
        .tensor(TensorToWrite {
            name: format!("{name}.lora_b"),
            dims: b_dims,
            dtype: GgmlType::F32,
            data: f32_bytes(&b_data),
        });
    }
    w.write(path)?;
    Ok(())
}
