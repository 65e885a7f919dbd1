use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{Error, GgmlType, Result, Value, DEFAULT_ALIGNMENT, MAGIC};

/// A tensor to be written: its directory entry and a producer of its bytes.
pub struct TensorToWrite {
    /// Tensor name.
    pub name: String,
    /// Dimensions in ggml order (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    /// Element type of the bytes.
    pub dtype: GgmlType,
    /// The encoded data.
    pub data: Vec<u8>,
}

/// Builds a GGUF (version 3) file: metadata first, then tensors.
///
/// The file is written under a temporary name beside the target and renamed when
/// complete, so a crash never leaves a half file that looks whole.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorToWrite>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one metadata entry.
    pub fn metadata(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        let key = key.into();
        self.metadata.retain(|(k, _)| *k != key);
        self.metadata.push((key, value));
        self
    }

    /// Adds a tensor. Its byte length must match its type and dims.
    pub fn tensor(&mut self, t: TensorToWrite) -> &mut Self {
        self.tensors.push(t);
        self
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        for t in &self.tensors {
            let n: u64 = t.dims.iter().product();
            if t.dtype.bytes_for(n) != Some(t.data.len() as u64) {
                return Err(Error::Tensor {
                    path: path.to_path_buf(),
                    tensor: t.name.clone(),
                    what: format!(
                        "{} bytes given for {n} elements of {}",
                        t.data.len(),
                        t.dtype
                    ),
                });
            }
        }
        let tmp = tmp_path(path);
        let io = |source| Error::Io {
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(io)?;
        let mut w = BufWriter::new(file);
        self.write_into(&mut w).map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    fn write_into(&self, w: &mut impl Write) -> std::io::Result<()> {
        let align = self
            .metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT);
        let mut head: Vec<u8> = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            head.extend_from_slice(&encode_str(k));
            head.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            encode_value(v, &mut head);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            head.extend_from_slice(&encode_str(&t.name));
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.dtype.id().to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset += (t.data.len() as u64).div_ceil(align) * align;
        }
        let pad = (head.len() as u64).div_ceil(align) * align - head.len() as u64;
        head.resize(head.len() + pad as usize, 0);
        w.write_all(&head)?;
        for t in &self.tensors {
            w.write_all(&t.data)?;
            let pad = (t.data.len() as u64).div_ceil(align) * align - t.data.len() as u64;
            w.write_all(&vec![0u8; pad as usize])?;
        }
        Ok(())
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn encode_str(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => out.extend_from_slice(&encode_str(s)),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(items) => {
            // An empty array is written as an array of u32.
            let elem = items.first().map(|i| i.value_type() as u32).unwrap_or(4);
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                encode_value(i, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgufFile;

    fn sample() -> GgufWriter {
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", Value::String("llama".into()))
            .metadata("llama.block_count", Value::U32(2))
            .metadata(
                "tokenizer.ggml.tokens",
                Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            )
            .tensor(TensorToWrite {
                name: "w".into(),
                dims: vec![4, 2],
                dtype: GgmlType::F32,
                data: (0..8u32).flat_map(|i| (i as f32).to_le_bytes()).collect(),
            })
            .tensor(TensorToWrite {
                name: "q".into(),
                dims: vec![32],
                dtype: GgmlType::Q8_0,
                data: vec![1u8; 34],
            });
        w
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        sample().write(&p).unwrap();
        let f = GgufFile::open(&p).unwrap();
        assert_eq!(f.str("general.architecture").unwrap(), "llama");
        assert_eq!(f.u64("llama.block_count").unwrap(), 2);
        assert_eq!(
            f.str_array("tokenizer.ggml.tokens").unwrap(),
            vec!["a", "b"]
        );
        let t = f.tensor("w").unwrap();
        assert_eq!(t.dims, vec![4, 2]);
        let data = f.tensor_data(t);
        assert_eq!(f32::from_le_bytes(data[28..32].try_into().unwrap()), 7.0);
        assert_eq!(f.tensor_data(f.tensor("q").unwrap()), &[1u8; 34][..]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        sample().write(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let q = dir.path().join("t.gguf");
        // The last 30 bytes are padding after tensor `q`, not data.
        for len in 0..bytes.len() - 30 {
            std::fs::write(&q, &bytes[..len]).unwrap();
            let err = GgufFile::open(&q).unwrap_err().to_string();
            assert!(err.contains("t.gguf"), "error names the file: {err}");
        }
    }

    #[test]
    fn truncated_data_names_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        sample().write(&p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 40]).unwrap();
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(
            err.contains("tensor `q`") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_lengths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        sample().write(&p).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        // The first key's length field follows the 24-byte header.
        bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(err.contains("string length"), "{err}");
        std::fs::write(&p, b"GGML not a gguf file").unwrap();
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(err.contains("not a GGUF file"), "{err}");
    }

    #[test]
    fn unsupported_type_names_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        sample().write(&p).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        // Find tensor `q`'s type field: name "q" then rank, one dim, then type id 8.
        let needle = [
            1u8, 0, 0, 0, 0, 0, 0, 0, b'q', 1, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0,
        ];
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        bytes[at + needle.len()..at + needle.len() + 4].copy_from_slice(&20u32.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let err = GgufFile::open(&p).unwrap_err().to_string();
        assert!(
            err.contains("tensor `q`") && err.contains("unsupported tensor type id 20"),
            "{err}"
        );
    }
}
