//! Named f32 tensors to and from safetensors files, with string metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{Error, Result};

/// A named tensor: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// Tensor name.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Vec<f32>,
}

/// Writes `tensors` as F32 with `metadata` (written to a temporary name first, then
/// renamed, so a reader never sees half a file).
pub fn write(path: &Path, tensors: &[Named], metadata: BTreeMap<String, String>) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| bad(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    let meta: HashMap<String, String> = metadata.into_iter().collect();
    safetensors::tensor::serialize_to_file(views, Some(meta), &tmp).map_err(|e| bad(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// Reads every tensor (F32 only) and the metadata of `path`.
pub fn read(path: &Path) -> Result<(Vec<Named>, BTreeMap<String, String>)> {
    let buf = std::fs::read(path).map_err(Error::io(path))?;
    let (_, meta) = SafeTensors::read_metadata(&buf).map_err(|e| bad(path, e))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| bad(path, e))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                what: format!("tensor `{name}` is {:?}, expected F32", view.dtype()),
            });
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(Named {
            name,
            shape: view.shape().to_vec(),
            values,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let meta = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok((out, meta))
}

fn bad(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}
