//! Sharded output, JSONL or Parquet: shards of bounded size, each written under a temporary
//! name and renamed only once complete, so a crash never leaves a half file that looks
//! whole. (Parquet schemas: see `parquet_write`.)

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input::Compression;
use crate::parquet_write::{parse_row, Col, ParquetSink};

/// The file format of output shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line (`.jsonl`, compressed as a whole by [`Compression`]).
    #[default]
    Jsonl,
    /// Parquet (`.parquet`); [`Compression`] picks the page codec (none, gzip, zstd).
    Parquet,
}

/// Where and how a stage writes its records.
#[derive(Debug, Clone)]
pub struct ShardSpec {
    /// The directory the shards go in (created if missing).
    pub dir: PathBuf,
    /// File-name stem of each shard: `{prefix}-{index:05}.jsonl{.gz|.zst}` or `.parquet`.
    pub prefix: String,
    /// JSONL or Parquet.
    pub format: Format,
    /// Compression of the shards.
    pub compression: Compression,
    /// A shard is closed once this many bytes of records as JSON (before compression)
    /// are in it, whatever the format.
    pub max_bytes: u64,
}

impl ShardSpec {
    /// Uncompressed shards of at most 256 MiB named `part-NNNNN.jsonl` in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> ShardSpec {
        ShardSpec {
            dir: dir.into(),
            prefix: "part".into(),
            format: Format::Jsonl,
            compression: Compression::None,
            max_bytes: 256 << 20,
        }
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
    Parquet(Box<ParquetSink>),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
            Sink::Zstd(w) => w.write_all(b),
            Sink::Parquet(_) => Err(std::io::Error::other("raw bytes written to a Parquet sink")),
        }
    }
    fn finish(self) -> std::io::Result<()> {
        let file = match self {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Gzip(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
            Sink::Zstd(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
            Sink::Parquet(p) => p.finish().map_err(std::io::Error::other)?,
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

/// Writes records (JSON objects) into size-bounded JSONL or Parquet shards.
pub struct ShardWriter {
    spec: ShardSpec,
    open: Option<OpenShard>,
    done: Vec<PathBuf>,
    records: u64,
    /// The last Parquet shard's columns: where the next one's schema starts.
    carry: Vec<Col>,
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
            carry: Vec::new(),
        })
    }

    /// Appends one record (a JSON object without line ending); in JSONL, `\n` is added.
    /// In Parquet, a record that does not fit the shard's schema starts a new shard.
    pub fn write(&mut self, json: &[u8]) -> Result<()> {
        let row = match self.spec.format {
            Format::Parquet => Some(parse_row(json)?),
            Format::Jsonl => None,
        };
        let breaks = match (&row, &self.open) {
            (
                Some(row),
                Some(OpenShard {
                    sink: Sink::Parquet(p),
                    ..
                }),
            ) => !p.fits(row),
            _ => false,
        };
        if breaks {
            self.close_shard()?;
        }
        if self.open.is_none() {
            self.open = Some(self.start_shard()?);
        }
        if let Some(shard) = self.open.as_mut() {
            let r = match (&mut shard.sink, row) {
                (Sink::Parquet(p), Some(row)) => p
                    .push(row, json.len() as u64)
                    .map_err(std::io::Error::other),
                (sink, _) => sink.write_all(json).and_then(|_| sink.write_all(b"\n")),
            };
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
        let name = match self.spec.format {
            Format::Jsonl => format!(
                "{}-{:05}.jsonl{}",
                self.spec.prefix,
                self.done.len(),
                self.spec.compression.suffix()
            ),
            Format::Parquet => format!("{}-{:05}.parquet", self.spec.prefix, self.done.len()),
        };
        let path = self.spec.dir.join(&name);
        let tmp = self.spec.dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, "create", e))?;
        let buf = BufWriter::with_capacity(1 << 20, file);
        let sink = match (self.spec.format, self.spec.compression) {
            (Format::Parquet, c) => {
                Sink::Parquet(Box::new(ParquetSink::new(buf, c, self.carry.clone())))
            }
            (Format::Jsonl, Compression::None) => Sink::Plain(buf),
            (Format::Jsonl, Compression::Gzip) => Sink::Gzip(flate2::write::GzEncoder::new(
                buf,
                flate2::Compression::default(),
            )),
            (Format::Jsonl, Compression::Zstd) => Sink::Zstd(
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
            if let Sink::Parquet(p) = &shard.sink {
                self.carry = p.columns();
            }
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
