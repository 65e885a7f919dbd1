//! Models as a list of tensors in GGUF terms that can be read one at a time as f32:
//! a GGUF file, or a Hugging Face directory seen through its GGUF names and layout.

use std::io::Read;
use std::path::{Path, PathBuf};

use hearth_gguf::{GgmlType, GgufFile, Value};
use hearth_lineage::{Provenance, METADATA_KEY};
use sha2::{Digest, Sha256};

use crate::{codec, Error, Result};

/// One tensor of a source, named and shaped as in GGUF.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTensor {
    /// GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// ggml dimensions (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    /// Storage type in the source.
    pub dtype: GgmlType,
}

impl SourceTensor {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A model whose tensors can be read one by one.
pub trait TensorSource {
    /// The file or directory.
    fn path(&self) -> &Path;
    /// GGUF metadata describing the model (architecture, shape, tokenizer).
    fn metadata(&self) -> Result<Vec<(String, Value)>>;
    /// The tensors, in the order to write them.
    fn tensors(&self) -> &[SourceTensor];
    /// Tensor `i`'s values in GGUF layout.
    fn read_f32(&self, i: usize) -> Result<Vec<f32>>;
    /// Tensor `i`'s stored bytes, when they are in GGUF layout already (copied as is
    /// when the target type is the stored type).
    fn raw(&self, i: usize) -> Option<&[u8]>;
    /// The files whose bytes identify the source, for its hash.
    fn content_files(&self) -> Vec<PathBuf>;
    /// The source's own provenance record.
    fn provenance(&self) -> Result<Option<Provenance>>;
}

/// A GGUF file as a [`TensorSource`].
pub struct GgufSource {
    file: GgufFile,
    tensors: Vec<SourceTensor>,
}

impl GgufSource {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let tensors = file
            .tensors()
            .iter()
            .map(|t| SourceTensor {
                name: t.name.clone(),
                dims: t.dims.clone(),
                dtype: t.dtype,
            })
            .collect();
        Ok(Self { file, tensors })
    }

    /// The open file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }
}

impl TensorSource for GgufSource {
    fn path(&self) -> &Path {
        self.file.path()
    }

    fn metadata(&self) -> Result<Vec<(String, Value)>> {
        Ok(self.file.metadata().to_vec())
    }

    fn tensors(&self) -> &[SourceTensor] {
        &self.tensors
    }

    fn read_f32(&self, i: usize) -> Result<Vec<f32>> {
        let t = &self.file.tensors()[i];
        codec::decode(
            &t.name,
            t.dtype,
            self.file.tensor_data(t),
            t.dims[0] as usize,
        )
    }

    fn raw(&self, i: usize) -> Option<&[u8]> {
        Some(self.file.tensor_data(&self.file.tensors()[i]))
    }

    fn content_files(&self) -> Vec<PathBuf> {
        vec![self.file.path().to_path_buf()]
    }

    fn provenance(&self) -> Result<Option<Provenance>> {
        self.file
            .str_opt(METADATA_KEY)?
            .map(|s| {
                Provenance::from_json(s).map_err(|e| Error::format(self.path(), e.to_string()))
            })
            .transpose()
    }
}

/// Hex sha256 of the files' bytes, concatenated in order.
pub fn sha256_files(files: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for p in files {
        let mut f = std::fs::File::open(p).map_err(Error::io(p))?;
        loop {
            let n = f.read(&mut buf).map_err(Error::io(p))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
