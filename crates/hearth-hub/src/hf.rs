//! Hugging Face repo ids: parsing, the local mirror under `<cache>/hf`, and fetching
//! with the `curl` command (no HTTP client in-process).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::progress::Phase;
use crate::pull::sha256_file;
use crate::registry::known_names;
use crate::{Cache, Error, NoProgress, Progress, Result};

/// A Hugging Face model reference: `owner/name`, `owner/name/file.gguf` or
/// `owner/name:QUANT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfSpec {
    /// `owner/name`.
    pub repo: String,
    /// A file inside the repo, when given.
    pub file: Option<String>,
    /// A quantisation to pick among the repo's GGUF files (`Q4_K_M`), when given.
    pub quant: Option<String>,
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn is_gguf(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".gguf")
}

impl HfSpec {
    /// Parses a repo id; `None` when `spec` does not have that shape (a relative path
    /// such as `models/x.gguf` with two parts is taken for a path, not a repo).
    pub fn parse(spec: &str) -> Option<HfSpec> {
        if spec.starts_with(['/', '.', '~']) || spec.contains('\\') {
            return None;
        }
        let (rest, quant) = match spec.rsplit_once(':') {
            Some((rest, q)) if valid_segment(q) => (rest, Some(q.to_string())),
            Some(_) => return None,
            None => (spec, None),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 || !parts.iter().all(|p| valid_segment(p)) {
            return None;
        }
        let repo = format!("{}/{}", parts[0], parts[1]);
        if parts.len() == 2 {
            if is_gguf(parts[1]) {
                return None;
            }
            return Some(HfSpec {
                repo,
                file: None,
                quant,
            });
        }
        let file = parts[2..].join("/");
        if !is_gguf(&file) || quant.is_some() {
            return None;
        }
        Some(HfSpec {
            repo,
            file: Some(file),
            quant: None,
        })
    }
}

impl std::fmt::Display for HfSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repo)?;
        if let Some(file) = &self.file {
            write!(f, "/{file}")?;
        }
        if let Some(q) = &self.quant {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

/// Picks the GGUF file among `names`: the one matching `quant` when given, else the
/// only one, else the Q4_K_M one.
fn choose(names: &[String], quant: Option<&str>) -> std::result::Result<String, String> {
    let mut ggufs: Vec<&String> = names.iter().filter(|n| is_gguf(n)).collect();
    if ggufs.iter().any(|n| !n.contains("mmproj")) {
        ggufs.retain(|n| !n.contains("mmproj"));
    }
    if ggufs.is_empty() {
        return Err("has no .gguf file".to_string());
    }
    let listing = || {
        ggufs
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let single = |found: Vec<&&String>, what: &str| match found.as_slice() {
        [one] => Ok((**one).clone()),
        [] => Err(format!("no .gguf file {what} (files: {})", listing())),
        many => Err(format!(
            "several .gguf files {what}: {}; name one as owner/name/file.gguf",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    let upper = |s: &str| s.to_ascii_uppercase();
    match quant {
        Some(q) => {
            let q = upper(q);
            let exact: Vec<_> = ggufs
                .iter()
                .filter(|n| {
                    let n = upper(n);
                    [".", "-", "_"]
                        .iter()
                        .any(|sep| n.ends_with(&format!("{sep}{q}.GGUF")))
                })
                .collect();
            if !exact.is_empty() {
                return single(exact, &format!("for {q}"));
            }
            single(
                ggufs.iter().filter(|n| upper(n).contains(&q)).collect(),
                &format!("for {q}"),
            )
        }
        None if ggufs.len() == 1 => Ok(ggufs[0].clone()),
        None => single(
            ggufs
                .iter()
                .filter(|n| upper(n).contains("Q4_K_M"))
                .collect(),
            "and none or several Q4_K_M; add :QUANT",
        ),
    }
}

/// GGUF files under `dir`, as paths relative to it (partial downloads excluded).
fn list_cached(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => list_cached(&entry.path(), &rel, out),
            Ok(_) if is_gguf(&name) => out.push(rel),
            _ => {}
        }
    }
}

#[derive(Deserialize)]
struct RepoInfo {
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: String,
}

impl Cache {
    /// Finds `spec` under `<cache>/hf/<owner>/<name>/`, else downloads it from the hub
    /// (unless offline) with `curl`, checking the sha256 the hub publishes when it does.
    pub fn fetch_hf(&self, spec: &HfSpec, progress: &dyn Progress) -> Result<PathBuf> {
        let dir = self.hf_dir().join(&spec.repo);
        let hub_err = |message: String| Error::Hub {
            repo: spec.repo.clone(),
            message,
            known: known_names(),
        };
        if let Some(file) = &spec.file {
            let path = dir.join(file);
            if path.is_file() {
                return Ok(path);
            }
        } else {
            let mut names = Vec::new();
            list_cached(&dir, "", &mut names);
            if let Ok(file) = choose(&names, spec.quant.as_deref()) {
                return Ok(dir.join(file));
            }
        }
        if self.hf_offline() {
            return Err(Error::HubOffline {
                repo: spec.to_string(),
                dir,
                known: known_names(),
            });
        }
        let api = format!("{}/api/models/{}?blobs=true", self.hf_endpoint(), spec.repo);
        let body = curl_text(&api).map_err(hub_err)?;
        let info: RepoInfo = serde_json::from_str(&body)
            .map_err(|e| hub_err(format!("unexpected answer from {api}: {e}")))?;
        let names: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
        let file = match &spec.file {
            Some(file) if names.contains(file) => file.clone(),
            Some(file) => {
                return Err(Error::NoGguf {
                    repo: spec.repo.clone(),
                    message: format!("has no file {file}"),
                })
            }
            None => choose(&names, spec.quant.as_deref()).map_err(|message| Error::NoGguf {
                repo: spec.repo.clone(),
                message,
            })?,
        };
        let sibling = info.siblings.iter().find(|s| s.rfilename == file);
        let size = sibling.and_then(|s| s.size);
        let sha256 = sibling
            .and_then(|s| s.lfs.as_ref())
            .map(|l| l.sha256.to_ascii_lowercase());

        let path = dir.join(&file);
        let parent = path.parent().unwrap_or(&dir).to_path_buf();
        fs::create_dir_all(&parent).map_err(Error::io("create directory", &parent))?;
        let base = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let partial = parent.join(format!(".{base}.partial-{}", std::process::id()));
        let url = format!("{}/{}/resolve/main/{file}", self.hf_endpoint(), spec.repo);
        tracing::info!("downloading {url}");
        let result = curl_download(&url, &partial, size, progress)
            .map_err(hub_err)
            .and_then(|()| {
                if let Some(expected) = &sha256 {
                    let actual = sha256_file(&partial, &NoProgress)?;
                    if &actual != expected {
                        return Err(Error::ChecksumMismatch {
                            file: base.clone(),
                            expected: expected.clone(),
                            actual,
                        });
                    }
                }
                fs::rename(&partial, &path).map_err(Error::io("move the download to", &path))
            });
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        result.map(|()| path)
    }
}

fn curl_failure(what: &str, out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr.trim().lines().last().unwrap_or("").trim();
    format!(
        "{what}: {}",
        if msg.is_empty() {
            out.status.to_string()
        } else {
            msg.to_string()
        }
    )
}

fn curl_text(url: &str) -> std::result::Result<String, String> {
    let out = Command::new("curl")
        .args(["-fsSL", "--connect-timeout", "10", "--max-time", "60", url])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run curl: {e}"))?;
    if !out.status.success() {
        return Err(curl_failure(url, &out));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{url}: answer is not UTF-8: {e}"))
}

fn curl_download(
    url: &str,
    dest: &Path,
    size: Option<u64>,
    progress: &dyn Progress,
) -> std::result::Result<(), String> {
    let mut child = Command::new("curl")
        .args(["-fsSL", "--connect-timeout", "10", "--retry", "2", "-o"])
        .arg(dest)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run curl: {e}"))?;
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let phase = Phase::begin(progress, &format!("downloading {name}"), size);
    let mut seen = 0;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                let _ = child.kill();
                return Err(format!("waiting for curl: {e}"));
            }
        }
        let now = fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        if now > seen {
            phase.advance(now - seen);
            seen = now;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for curl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(curl_failure(url, &out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(repo: &str, file: Option<&str>, quant: Option<&str>) -> Option<HfSpec> {
        Some(HfSpec {
            repo: repo.into(),
            file: file.map(Into::into),
            quant: quant.map(Into::into),
        })
    }

    #[test]
    fn parse_shapes() {
        assert_eq!(
            HfSpec::parse("unsloth/gemma-3-270m-it-GGUF"),
            spec("unsloth/gemma-3-270m-it-GGUF", None, None)
        );
        assert_eq!(HfSpec::parse("o/n:Q8_0"), spec("o/n", None, Some("Q8_0")));
        assert_eq!(
            HfSpec::parse("o/n/m.Q8_0.gguf"),
            spec("o/n", Some("m.Q8_0.gguf"), None)
        );
        assert_eq!(
            HfSpec::parse("o/n/sub/m.gguf"),
            spec("o/n", Some("sub/m.gguf"), None)
        );
        for bad in [
            "",
            "gemma",
            "/abs/x.gguf",
            "./o/n",
            "../o/n",
            "o/",
            "/o/n",
            "models/x.gguf",
            "o/n/readme.md",
            "o/n:",
            "o/../n",
            "o/n/m.gguf:Q4",
            "o n/x",
        ] {
            assert_eq!(HfSpec::parse(bad), None, "{bad}");
        }
        assert_eq!(
            HfSpec::parse("o/n/f.gguf").unwrap().to_string(),
            "o/n/f.gguf"
        );
        assert_eq!(
            HfSpec::parse("o/n:Q4_K_M").unwrap().to_string(),
            "o/n:Q4_K_M"
        );
    }

    #[test]
    fn choose_gguf() {
        let names: Vec<String> = [
            "README.md",
            "m-Q4_K_M.gguf",
            "m-Q4_K_S.gguf",
            "m-Q8_0.gguf",
            "mmproj-f16.gguf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(choose(&names, None).unwrap(), "m-Q4_K_M.gguf");
        assert_eq!(choose(&names, Some("q8_0")).unwrap(), "m-Q8_0.gguf");
        assert_eq!(choose(&names, Some("Q4_K_S")).unwrap(), "m-Q4_K_S.gguf");
        assert!(choose(&names, Some("Q4_K"))
            .unwrap_err()
            .contains("several"));
        assert!(choose(&names, Some("Q2_K"))
            .unwrap_err()
            .contains("no .gguf file for Q2_K"));
        assert_eq!(choose(&["a.gguf".to_string()], None).unwrap(), "a.gguf");
        assert!(choose(&["a.bin".to_string()], None).is_err());
        let two = vec!["a-Q8_0.gguf".to_string(), "a-F16.gguf".to_string()];
        assert!(choose(&two, None).unwrap_err().contains("add :QUANT"));
    }

    #[test]
    fn cached_and_offline() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path()).with_hf_offline(true);
        let repo = cache.hf_dir().join("o/n");
        fs::create_dir_all(&repo).unwrap();
        fs::write(repo.join("m-Q4_K_M.gguf"), b"x").unwrap();
        fs::write(repo.join(".m-Q8_0.gguf.partial-1"), b"x").unwrap();
        let got = cache
            .fetch_hf(&HfSpec::parse("o/n").unwrap(), &NoProgress)
            .unwrap();
        assert_eq!(got, repo.join("m-Q4_K_M.gguf"));
        let got = cache
            .fetch_hf(&HfSpec::parse("o/n/m-Q4_K_M.gguf").unwrap(), &NoProgress)
            .unwrap();
        assert_eq!(got, repo.join("m-Q4_K_M.gguf"));
        let err = cache
            .fetch_hf(&HfSpec::parse("o/n:Q8_0").unwrap(), &NoProgress)
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::HubOffline { .. }), "{msg}");
        assert!(
            msg.contains("o/n:Q8_0")
                && msg.contains("HF_HUB_OFFLINE")
                && msg.contains("smollm2-135m"),
            "{msg}"
        );
    }

    #[test]
    fn unreachable_hub_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on port 9 of localhost: curl fails at once.
        let cache = Cache::at(dir.path()).with_hf_endpoint("http://127.0.0.1:9");
        let err = cache
            .fetch_hf(&HfSpec::parse("o/n").unwrap(), &NoProgress)
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Hub { .. }), "{msg}");
        assert!(
            msg.starts_with("could not reach the Hugging Face hub for o/n: "),
            "{msg}"
        );
        assert!(
            msg.ends_with("pass a local path or a known name: gemma3-270m, smollm2-135m"),
            "{msg}"
        );
        assert!(
            !cache.hf_dir().join("o/n").exists()
                || fs::read_dir(cache.hf_dir().join("o/n"))
                    .unwrap()
                    .next()
                    .is_none()
        );
    }
}
