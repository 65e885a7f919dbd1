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
        let entries: Vec<TensorEntry<'_>> = self
            .tensors
            .iter()
            .map(|t| TensorEntry {
                name: &t.name,
                dims: &t.dims,
                dtype: t.dtype,
                n_bytes: t.data.len() as u64,
            })
            .collect();
        let align = self.alignment();
        w.write_all(&self.header(&entries, align))?;
        for t in &self.tensors {
            w.write_all(&t.data)?;
            w.write_all(&padding(t.data.len() as u64, align))?;
        }
        Ok(())
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Header, metadata and tensor directory, padded to the alignment.
    fn header(&self, entries: &[TensorEntry<'_>], align: u64) -> Vec<u8> {
        let mut head: Vec<u8> = Vec::new();
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            head.extend_from_slice(&encode_str(k));
            head.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            encode_value(v, &mut head);
        }
        let mut offset = 0u64;
        for t in entries {
            head.extend_from_slice(&encode_str(t.name));
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&t.dtype.id().to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset += t.n_bytes.div_ceil(align) * align;
        }
        let pad = padding(head.len() as u64, align);
        head.extend_from_slice(&pad);
        head
    }

    /// Writes the metadata given so far and the tensors `specs` to `path`, asking
    /// `produce(i, spec)` for each tensor's bytes in order, one at a time: memory stays
    /// bounded by the largest tensor however big the file. Tensors added with
    /// [`tensor`](Self::tensor) are ignored. The file appears under its name only when
    /// complete; on any error the partial file is removed.
    pub fn write_streamed<E: From<Error>>(
        &self,
        path: impl AsRef<Path>,
        specs: &[TensorSpec],
        mut produce: impl FnMut(usize, &TensorSpec) -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<(), E> {
        let path = path.as_ref();
        let mut entries = Vec::with_capacity(specs.len());
        for s in specs {
            let n: u64 = s.dims.iter().product();
            let n_bytes = s.dtype.bytes_for(n).ok_or_else(|| Error::Tensor {
                path: path.to_path_buf(),
                tensor: s.name.clone(),
                what: format!("{n} elements do not fill whole {} blocks", s.dtype),
            })?;
            entries.push(TensorEntry {
                name: &s.name,
                dims: &s.dims,
                dtype: s.dtype,
                n_bytes,
            });
        }
        let tmp = tmp_path(path);
        let result = self.stream_into(&tmp, &entries, specs, &mut produce);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return result;
        }
        std::fs::rename(&tmp, path).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            E::from(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        })
    }

    fn stream_into<E: From<Error>>(
        &self,
        tmp: &Path,
        entries: &[TensorEntry<'_>],
        specs: &[TensorSpec],
        produce: &mut impl FnMut(usize, &TensorSpec) -> std::result::Result<Vec<u8>, E>,
    ) -> std::result::Result<(), E> {
        let io = |source| Error::Io {
            path: tmp.to_path_buf(),
            source,
        };
        let align = self.alignment();
        let file = File::create(tmp).map_err(io)?;
        let mut w = BufWriter::new(file);
        w.write_all(&self.header(entries, align)).map_err(io)?;
        for (i, (spec, entry)) in specs.iter().zip(entries).enumerate() {
            let data = produce(i, spec)?;
            if data.len() as u64 != entry.n_bytes {
                return Err(E::from(Error::Tensor {
                    path: tmp.to_path_buf(),
                    tensor: spec.name.clone(),
                    what: format!(
                        "{} bytes produced, {} expected for {}",
                        data.len(),
                        entry.n_bytes,
                        spec.dtype
                    ),
                }));
            }
            w.write_all(&data).map_err(io)?;
            w.write_all(&padding(entry.n_bytes, align)).map_err(io)?;
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok(())
    }
}

/// A tensor's directory entry for [`GgufWriter::write_streamed`]: its bytes come later.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Tensor name.
    pub name: String,
    /// Dimensions in ggml order (`dims[0]` is the row length).
    pub dims: Vec<u64>,
    /// Element type the bytes will have.
    pub dtype: GgmlType,
}

struct TensorEntry<'a> {
    name: &'a str,
    dims: &'a [u64],
    dtype: GgmlType,
    n_bytes: u64,
}

fn padding(len: u64, align: u64) -> Vec<u8> {
    vec![0u8; (len.div_ceil(align) * align - len) as usize]
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
    fn streamed_matches_buffered_and_cleans_up_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
        let w = sample();
        w.write(&a).unwrap();
        let specs: Vec<TensorSpec> = w
            .tensors
            .iter()
            .map(|t| TensorSpec {
                name: t.name.clone(),
                dims: t.dims.clone(),
                dtype: t.dtype,
            })
            .collect();
        w.write_streamed::<Error>(&b, &specs, |i, _| Ok(w.tensors[i].data.clone()))
            .unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let c = dir.path().join("c.gguf");
        let err = w
            .write_streamed::<Error>(&c, &specs, |_, _| Ok(vec![0u8; 3]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 bytes produced"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no leftovers"
        );
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
