//! Sharded JSONL output: shards of bounded size, each written under a temporary name and
//! renamed only once complete, so a crash never leaves a half file that looks whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::Compression;

/// Where and how a stage writes its records.
#[derive(Debug, Clone)]
pub struct ShardSpec {
    /// The directory the shards go in (created if missing).
    pub dir: PathBuf,
    /// File-name stem of each shard: `{prefix}-{index:05}.jsonl{.gz|.zst}`.
    pub prefix: String,
    /// Compression of the shards.
    pub compression: Compression,
    /// A shard is closed once this many bytes of JSONL (before compression) are in it.
    pub max_bytes: u64,
}

impl ShardSpec {
    /// Uncompressed shards of at most 256 MiB named `part-NNNNN.jsonl` in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ShardSpec {
        ShardSpec {
            dir: dir.into(),
            prefix: "part".into(),
            compression: Compression::None,
            max_bytes: 256 << 20,
        }
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
            Sink::Zstd(w) => w.write_all(b),
        }
    }
    fn finish(self) -> std::io::Result<()> {
        let file = match self {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Gzip(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
            Sink::Zstd(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
        };
        file.sync_all()
    }
}

struct OpenShard {
    sink: Sink,
    tmp: PathBuf,
    path: PathBuf,
    bytes: u64,
}

/// Writes records as JSONL lines into size-bounded shards.
pub struct ShardWriter {
    spec: ShardSpec,
    open: Option<OpenShard>,
    done: Vec<PathBuf>,
    records: u64,
}

impl ShardWriter {
    /// A writer for `spec`; creates the directory. No file appears before the first record.
    pub fn new(spec: ShardSpec) -> Result<ShardWriter> {
        std::fs::create_dir_all(&spec.dir).map_err(|e| Error::io(&spec.dir, "create", e))?;
        Ok(ShardWriter {
            spec,
            open: None,
            done: Vec::new(),
            records: 0,
        })
    }

    /// Appends one record (a JSON object without line ending); `\n` is added.
    pub fn write(&mut self, json: &[u8]) -> Result<()> {
        if self.open.is_none() {
            self.open = Some(self.start_shard()?);
        }
        if let Some(shard) = self.open.as_mut() {
            let r = shard
                .sink
                .write_all(json)
                .and_then(|_| shard.sink.write_all(b"\n"));
            r.map_err(|e| Error::io(&shard.tmp, "write", e))?;
            shard.bytes += json.len() as u64 + 1;
            self.records += 1;
            if shard.bytes >= self.spec.max_bytes {
                self.close_shard()?;
            }
        }
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Closes the last shard and returns every shard's final path, in order.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.close_shard()?;
        Ok(std::mem::take(&mut self.done))
    }

    fn start_shard(&self) -> Result<OpenShard> {
        let name = format!(
            "{}-{:05}.jsonl{}",
            self.spec.prefix,
            self.done.len(),
            self.spec.compression.suffix()
        );
        let path = self.spec.dir.join(&name);
        let tmp = self.spec.dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, "create", e))?;
        let buf = BufWriter::with_capacity(1 << 20, file);
        let sink = match self.spec.compression {
            Compression::None => Sink::Plain(buf),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                buf,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Sink::Zstd(
                zstd::stream::write::Encoder::new(buf, 3)
                    .map_err(|e| Error::io(&tmp, "start zstd", e))?,
            ),
        };
        Ok(OpenShard {
            sink,
            tmp,
            path,
            bytes: 0,
        })
    }

    fn close_shard(&mut self) -> Result<()> {
        if let Some(shard) = self.open.take() {
            shard
                .sink
                .finish()
                .map_err(|e| Error::io(&shard.tmp, "finish", e))?;
            std::fs::rename(&shard.tmp, &shard.path)
                .map_err(|e| Error::io(&shard.path, "rename", e))?;
            self.done.push(shard.path);
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, "write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, "rename", e))
}
