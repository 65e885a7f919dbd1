use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::{Error, GgmlType, Result, Value, ValueType, DEFAULT_ALIGNMENT, MAGIC};

/// One entry of the tensor directory.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the contiguous (row) length.
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Size of the data in bytes.
    pub fn n_bytes(&self) -> u64 {
        // Checked when the file was opened.
        self.dtype.bytes_for(self.n_elements()).unwrap_or(0)
    }
}

/// An open GGUF file: metadata parsed, tensor data left in the memory map.
pub struct GgufFile {
    path: PathBuf,
    mmap: Mmap,
    version: u32,
    metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: impl Into<String>) -> Error {
        Error::Format {
            path: self.path.to_path_buf(),
            offset: self.pos as u64,
            what: what.into(),
        }
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if (n as u64) > self.remaining() {
            return Err(self.err(format!(
                "file ends while reading {what} ({n} bytes needed, {} left): truncated?",
                self.remaining()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > self.remaining() {
            return Err(self.err(format!(
                "{what}: string length {len} exceeds the {} bytes left",
                self.remaining()
            )));
        }
        let bytes = self.take(len as usize, what)?;
        // Vocabularies hold byte tokens that are not always valid UTF-8: keep them lossily.
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        })
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(key)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(key)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            ValueType::U32 => Value::U32(self.u32(key)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            ValueType::Bool => Value::Bool(self.array::<1>(key)?[0] != 0),
            ValueType::String => Value::String(self.string(key)?),
            ValueType::U64 => Value::U64(self.u64(key)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            ValueType::Array => {
                if depth > 4 {
                    return Err(self.err(format!("`{key}`: arrays nested too deeply")));
                }
                let id = self.u32(key)?;
                let elem = ValueType::from_id(id)
                    .ok_or_else(|| self.err(format!("`{key}`: unknown array element type {id}")))?;
                let len = self.u64(key)?;
                if len.saturating_mul(elem.min_bytes()) > self.remaining() {
                    return Err(self.err(format!(
                        "`{key}`: array of {len} elements cannot fit in the {} bytes left",
                        self.remaining()
                    )));
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                Value::Array(items)
            }
        })
    }
}

impl GgufFile {
    /// Opens and memory-maps `path`, parsing its header, metadata and tensor directory
    /// and checking that every tensor's data lies inside the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only; a file changed underneath us by another process
        // is outside what any reader can defend against (llama.cpp maps the same way).
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, mmap)
    }

    fn parse(path: PathBuf, mmap: Mmap) -> Result<Self> {
        let mut c = Cursor {
            bytes: &mmap,
            pos: 0,
            path: &path,
        };
        let magic = c.array::<4>("magic")?;
        if magic != MAGIC {
            return Err(Error::Format {
                path: path.clone(),
                offset: 0,
                what: format!("not a GGUF file (magic {:02x?}, expected \"GGUF\")", magic),
            });
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(c.err(format!("unsupported GGUF version {version} (2 and 3 are)")));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        if n_kv.saturating_mul(12) > c.remaining() || n_tensors.saturating_mul(24) > c.remaining() {
            return Err(c.err(format!(
                "header claims {n_kv} metadata entries and {n_tensors} tensors, more than the file holds"
            )));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut index = HashMap::new();
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let id = c.u32("metadata type")?;
            let ty = ValueType::from_id(id)
                .ok_or_else(|| c.err(format!("`{key}`: unknown metadata type {id}")))?;
            let value = c.value(ty, &key, 0)?;
            index.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            tensors.push(read_tensor_info(&mut c)?);
        }
        let alignment = match index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() => a,
                _ => return Err(c.err(format!("general.alignment {v:?} is not a power of two"))),
            },
        };
        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let file_len = mmap.len() as u64;
        let mut tensor_index = HashMap::new();
        for (i, t) in tensors.iter().enumerate() {
            let terr = |what: String| Error::Tensor {
                path: path.clone(),
                tensor: t.name.clone(),
                what,
            };
            let n = t.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            let n = n.ok_or_else(|| terr(format!("dimensions {:?} overflow", t.dims)))?;
            let bytes = t.dtype.bytes_for(n).ok_or_else(|| {
                terr(format!(
                    "{n} elements is not a whole number of {} blocks of {}",
                    t.dtype,
                    t.dtype.block_len()
                ))
            })?;
            if t.dims
                .first()
                .is_some_and(|&d| d % t.dtype.block_len() as u64 != 0)
            {
                return Err(terr(format!(
                    "row length {} is not a multiple of the {} block size {}",
                    t.dims[0],
                    t.dtype,
                    t.dtype.block_len()
                )));
            }
            if !t.offset.is_multiple_of(alignment) {
                return Err(terr(format!(
                    "data offset {} is not aligned to {alignment}",
                    t.offset
                )));
            }
            let end = data_start
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(bytes));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(terr(format!(
                        "data ({bytes} bytes at offset {}) runs past the end of the file ({file_len} bytes): truncated?",
                        data_start + t.offset
                    )))
                }
            }
            if tensor_index.insert(t.name.clone(), i).is_some() {
                return Err(terr("name appears twice in the tensor directory".into()));
            }
        }
        Ok(Self {
            version,
            metadata,
            index,
            tensors,
            tensor_index,
            data_start: data_start as usize,
            mmap,
            path,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.mmap.len() as u64
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// One metadata value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn wrong(&self, key: &str, expected: &'static str, v: &Value) -> Error {
        Error::WrongType {
            path: self.path.clone(),
            key: key.to_string(),
            expected,
            found: v.type_name(),
        }
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key).ok_or_else(|| Error::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
        })
    }

    /// A required unsigned integer.
    pub fn u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| self.wrong(key, "an unsigned integer", v))
    }

    /// An optional unsigned integer (present but mistyped is an error).
    pub fn u64_opt(&self, key: &str) -> Result<Option<u64>> {
        self.get(key).map(|_| self.u64(key)).transpose()
    }

    /// A required number.
    pub fn f64(&self, key: &str) -> Result<f64> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| self.wrong(key, "a number", v))
    }

    /// An optional number.
    pub fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        self.get(key).map(|_| self.f64(key)).transpose()
    }

    /// An optional boolean.
    pub fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a boolean", v)),
        }
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "a string", v))
    }

    /// An optional string.
    pub fn str_opt(&self, key: &str) -> Result<Option<&str>> {
        self.get(key).map(|_| self.str(key)).transpose()
    }

    /// A required array.
    pub fn array(&self, key: &str) -> Result<&[Value]> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong(key, "an array", v))
    }

    /// A required array of strings.
    pub fn str_array(&self, key: &str) -> Result<Vec<&str>> {
        let items = self.array(key)?;
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.wrong(key, "an array of strings", &items[0]))
            })
            .collect()
    }

    /// The tensor directory in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// A tensor's directory entry.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's bytes, straight from the memory map (bounds checked at open).
    pub fn tensor_data(&self, info: &TensorInfo) -> &[u8] {
        let start = self.data_start + info.offset as usize;
        &self.mmap[start..start + info.n_bytes() as usize]
    }

    /// Lets the operating system drop the pages of bytes `range` of a tensor's data
    /// from this process's memory, for a tensor that was copied into another layout:
    /// they are read back from the file if touched again. Best effort (a no-op where
    /// `madvise` is missing or refuses).
    pub fn release_tensor_pages(&self, info: &TensorInfo, range: std::ops::Range<usize>) {
        #[cfg(unix)]
        {
            let len = (info.n_bytes() as usize)
                .min(range.end)
                .saturating_sub(range.start);
            let start = self.data_start + info.offset as usize + range.start;
            // SAFETY: the map is a read-only shared mapping of the file; dropping its
            // pages only makes the next access read the same bytes from the file again,
            // so every reference into the map stays valid and unchanged.
            let _ = unsafe {
                self.mmap
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len)
            };
        }
        #[cfg(not(unix))]
        let _ = (info, range);
    }

    /// Offset of the data section from the start of the file.
    pub fn data_start(&self) -> u64 {
        self.data_start as u64
    }
}

fn read_tensor_info(c: &mut Cursor<'_>) -> Result<TensorInfo> {
    let name = c.string("tensor name")?;
    let n_dims = c.u32("tensor rank")?;
    if n_dims == 0 || n_dims > 4 {
        return Err(Error::Tensor {
            path: c.path.to_path_buf(),
            tensor: name,
            what: format!("rank {n_dims} (1 to 4 allowed)"),
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64("tensor dimension")?);
    }
    let type_id = c.u32("tensor type")?;
    let dtype = GgmlType::from_id(type_id).ok_or_else(|| Error::Tensor {
        path: c.path.to_path_buf(),
        tensor: name.clone(),
        what: format!("unsupported tensor type id {type_id}"),
    })?;
    let offset = c.u64("tensor offset")?;
    Ok(TensorInfo {
        name,
        dims,
        dtype,
        offset,
    })
}
