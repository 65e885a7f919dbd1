//! `hearth inspect` end to end: counts and licence verdicts of the real models, and the
//! memory estimate against the peak resident memory of a real `hearth generate`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth_model::tiny::TinySpec;

fn real(name: &str) -> Option<PathBuf> {
    let info = hearth_hub::find_model(name)?;
    let p = hearth_hub::cache_dir().join("models").join(info.file_name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED: {} absent (run `hearth pull {name}`)", p.display());
        None
    }
}

/// A private copy of the binary taken when the first test starts: the target directory
/// is shared, and another build may replace `hearth` there while these tests run.
fn hearth_bin() -> &'static Path {
    static BIN: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &BIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hearth");
        std::fs::copy(env!("CARGO_BIN_EXE_hearth"), &p).unwrap();
        (dir, p)
    })
    .1
}

fn inspect_json(model: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(hearth_bin())
        .arg("inspect")
        .arg(model)
        .args(extra)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Sum of the elements of every tensor, counted here from the file's directory.
fn count_elements(model: &Path) -> u64 {
    let f = hearth_gguf::GgufFile::open(model).unwrap();
    f.tensors().iter().map(|t| t.n_elements()).sum()
}

#[test]
fn tiny_model_report_has_the_required_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("tiny.gguf");
    TinySpec::gemma3().write(&p).unwrap();
    let r = inspect_json(&p, &["--ctx", "100", "--batch", "2"]);
    for k in [
        "architecture",
        "parameters",
        "context_length",
        "license",
        "license_verdict",
        "memory_bytes",
    ] {
        assert!(r.get(k).is_some(), "missing `{k}` in {r}");
    }
    assert_eq!(r["architecture"], "gemma3");
    assert_eq!(r["parameters"].as_u64().unwrap(), count_elements(&p));
    assert_eq!(r["license_verdict"], "permissive");
    assert_eq!(r["sliding_window"], 16);
    assert_eq!(r["sliding_layers"], 5);
    // KV: 5 local layers hold 16 positions, 1 global holds 100; kv_dim 64; f16 K and V; 2 sequences.
    assert_eq!(
        r["memory"]["kv_cache_bytes"],
        2 * (5 * 16 + 100) * 64 * 2 * 2
    );
    let verdicts = r["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 6);
    assert!(verdicts
        .iter()
        .all(|v| ["pass", "warn", "fail"].contains(&v["status"].as_str().unwrap())));
}

#[test]
fn real_models_counts_and_licences() {
    for (name, lo, hi, verdict, arch) in [
        (
            "smollm2-135m",
            134_000_000u64,
            136_000_000u64,
            "permissive",
            "llama",
        ),
        (
            "gemma3-270m",
            267_000_000,
            270_000_000,
            "restricted",
            "gemma3",
        ),
    ] {
        let Some(p) = real(name) else { continue };
        let r = inspect_json(&p, &[]);
        let params = r["parameters"].as_u64().unwrap();
        assert_eq!(params, count_elements(&p), "{name}");
        assert!((lo..hi).contains(&params), "{name}: {params}");
        assert_eq!(r["license_verdict"], verdict, "{name}: {r}");
        assert_eq!(r["architecture"], arch);
        assert!(r["context_length"].as_u64().unwrap() >= 8192);
    }
}

/// Runs `hearth generate` and returns (positions used, peak resident bytes) by
/// sampling `VmHWM` of the child until it exits.
fn measure_generate(model: &Path, prompt: &str, n: usize) -> (usize, u64) {
    let mut child = Command::new(hearth_bin())
        .args(["generate", "-m"])
        .arg(model)
        .args([
            "-p",
            prompt,
            "-n",
            &n.to_string(),
            "--temperature",
            "0",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status) {
            if let Some(v) = s.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                let kib: u64 = v.split_whitespace().next().unwrap().parse().unwrap();
                peak_kib = peak_kib.max(kib);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let used =
        v["prompt_ids"].as_array().unwrap().len() + v["generated_ids"].as_array().unwrap().len();
    (used, peak_kib * 1024)
}

#[test]
fn memory_estimate_within_ten_percent_of_generate() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/gpl3.txt"),
    )
    .unwrap_or_else(|_| "The quick brown fox jumps over the lazy dog. ".repeat(300));
    let long: String = text.chars().take(9000).collect();
    for name in ["smollm2-135m", "gemma3-270m"] {
        let Some(p) = real(name) else { continue };
        for prompt in ["Hello there", long.as_str()] {
            let (ctx, peak) = measure_generate(&p, prompt, 16);
            let r = inspect_json(&p, &["--ctx", &ctx.to_string()]);
            let est = r["memory_bytes"].as_u64().unwrap();
            let ratio = est as f64 / peak as f64;
            eprintln!(
                "{name} ctx {ctx}: estimate {est} B, measured peak {peak} B, ratio {ratio:.3}"
            );
            assert!(
                (0.9..=1.1).contains(&ratio),
                "{name} ctx {ctx}: estimate {est} vs peak {peak}"
            );
        }
    }
}
