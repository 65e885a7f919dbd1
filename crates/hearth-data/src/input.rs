//! Finding input files and reading them as batches of raw lines, whatever the compression.
//!
//! Lines are read as bytes (`read_until(b'\n')`), so invalid UTF-8 is a per-line problem
//! reported by the parser, not a reason to stop. A file that cannot be decompressed past
//! some point is reported as one [`Malformed`] entry at that line, and reading goes on with
//! the next file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::error::{Error, Result};
use crate::parquet_read::{self, is_parquet};
use crate::record::Malformed;

/// How a data file is compressed, chosen by its name's ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text (`.jsonl`, `.json`, `.ndjson`).
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`, `.zstd`).
    Zstd,
}

impl Compression {
    /// The compression a file name implies, or `None` when it names no data file we read.
    pub fn from_path(path: &Path) -> Option<Compression> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let (stem, comp) = if let Some(s) = name.strip_suffix(".gz") {
            (s, Compression::Gzip)
        } else if let Some(s) = name
            .strip_suffix(".zst")
            .or_else(|| name.strip_suffix(".zstd"))
        {
            (s, Compression::Zstd)
        } else {
            (name.as_str(), Compression::None)
        };
        [".jsonl", ".json", ".ndjson"]
            .iter()
            .any(|ext| stem.ends_with(ext))
            .then_some(comp)
    }

    /// The file-name ending written for this compression after `.jsonl`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

/// The ordered list of files one input path names.
///
/// A file is taken as is (its format and compression from its name); a directory
/// contributes every data file beneath it (`*.jsonl`, `*.jsonl.gz`, `*.jsonl.zst`,
/// `*.parquet`, ...) in sorted path
/// order, so the order of records, and so every result, is the same on every run.
#[derive(Debug, Clone)]
pub struct InputSet {
    files: Vec<PathBuf>,
}

impl InputSet {
    /// Finds the files under `path`.
    pub fn discover(path: &Path) -> Result<InputSet> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "stat", e))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            walk(path, &mut files)?;
            files.sort();
            if files.is_empty() {
                return Err(Error::Input {
                    path: path.to_path_buf(),
                    what: "directory holds no .jsonl, .jsonl.gz, .jsonl.zst or .parquet files"
                        .into(),
                });
            }
        } else {
            files.push(path.to_path_buf());
        }
        Ok(InputSet { files })
    }

    /// An input set of exactly these files, in this order.
    pub fn from_files(files: Vec<PathBuf>) -> InputSet {
        InputSet { files }
    }

    /// The files, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Reads every file in order on a background thread and hands back batches of at
    /// most `batch_lines` raw lines. Blank lines are skipped (and counted in the batch).
    /// A Parquet file gives one line per row: the row as a JSON object, numbered from 1.
    pub fn batches(&self, batch_lines: usize) -> Batches {
        let (tx, rx) = mpsc::sync_channel(2);
        let files = self.files.clone();
        let batch_lines = batch_lines.max(1);
        std::thread::spawn(move || read_all(&files, batch_lines, &tx));
        Batches { rx }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "read directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "read directory", e))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| Error::io(&path, "stat", e))?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if Compression::from_path(&path).is_some() || is_parquet(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// One line of input as read: which file, which line (1-based), and its bytes without the
/// line ending.
#[derive(Debug, Clone)]
pub struct RawLine {
    /// Index of the file in [`InputSet::files`].
    pub file: u32,
    /// 1-based line number within that file.
    pub line: u64,
    /// The bytes of the line, without `\n` or `\r\n`.
    pub bytes: Vec<u8>,
}

/// A batch of raw lines, plus what went wrong at file level while reading it.
#[derive(Debug, Default)]
pub struct LineBatch {
    /// The non-blank lines, in input order.
    pub lines: Vec<RawLine>,
    /// Blank lines skipped while filling this batch.
    pub blank: u64,
    /// Files (or tails of files) that could not be read: one entry each.
    pub unreadable: Vec<Malformed>,
}

/// Iterator over [`LineBatch`]es; an `Err` item means an input file could not be opened.
pub struct Batches {
    rx: mpsc::Receiver<Result<LineBatch>>,
}

impl Iterator for Batches {
    type Item = Result<LineBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

/// Opens `path` for reading through the decompressor its name implies.
pub fn open_reader(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let raw: Box<dyn Read + Send> = match Compression::from_path(path).unwrap_or(Compression::None)
    {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(file).map_err(|e| Error::io(path, "open zstd", e))?,
        ),
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, raw)))
}

fn read_all(files: &[PathBuf], batch_lines: usize, tx: &mpsc::SyncSender<Result<LineBatch>>) {
    let mut batch = LineBatch::default();
    for (fi, path) in files.iter().enumerate() {
        if is_parquet(path) {
            if !parquet_read::read_file(path, fi as u32, batch_lines, &mut batch, tx) {
                return;
            }
            continue;
        }
        let mut reader = match open_reader(path) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut line_no = 0u64;
        loop {
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    batch.unreadable.push(Malformed {
                        file: path.clone(),
                        line: line_no + 1,
                        problem: format!("file unreadable from here on: {e}"),
                    });
                    break;
                }
            }
            line_no += 1;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                batch.blank += 1;
                continue;
            }
            batch.lines.push(RawLine {
                file: fi as u32,
                line: line_no,
                bytes,
            });
            if batch.lines.len() >= batch_lines && tx.send(Ok(std::mem::take(&mut batch))).is_err()
            {
                return;
            }
        }
    }
    if !batch.lines.is_empty() || batch.blank > 0 || !batch.unreadable.is_empty() {
        let _ = tx.send(Ok(batch));
    }
}
