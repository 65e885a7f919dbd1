//! `hearth quantize`, `convert`, `compare` and `--quantize` end to end on a tiny model.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hearth_model::tiny::TinySpec;

/// A private copy of the binary: the target directory is shared with other builds.
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

fn hearth(args: &[&str]) -> Output {
    let out = Command::new(hearth_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn generated(args: &[&str]) -> serde_json::Value {
    let mut a = vec![
        "generate",
        "-p",
        "hello",
        "-n",
        "8",
        "--temperature",
        "0",
        "--json",
    ];
    a.extend_from_slice(args);
    serde_json::from_slice::<serde_json::Value>(&hearth(&a).stdout).unwrap()["generated_ids"]
        .clone()
}

#[test]
fn quantize_convert_compare_and_load_time_quantization() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    TinySpec::gemma3().write(Path::new(&p("f32.gguf"))).unwrap();

    let out = hearth(&["quantize", &p("f32.gguf"), &p("q8.gguf"), "--type", "Q8_0"]);
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(msg.contains("Q8_0") && msg.contains("q8.gguf"), "{msg}");
    let r: serde_json::Value =
        serde_json::from_slice(&hearth(&["inspect", &p("q8.gguf"), "--json"]).stdout).unwrap();
    assert_eq!(r["provenance"]["operation"], "quantize");
    assert_eq!(r["provenance"]["parameters"]["type"], "Q8_0");
    assert_eq!(r["provenance"]["license"], "apache-2.0");

    // Quantizing while loading gives what the quantized file gives.
    assert_eq!(
        generated(&["-m", &p("f32.gguf"), "--quantize", "Q8_0"]),
        generated(&["-m", &p("q8.gguf")])
    );

    hearth(&["convert", &p("f32.gguf"), &p("hf")]);
    let r: serde_json::Value =
        serde_json::from_slice(&hearth(&["inspect", &p("hf"), "--json"]).stdout).unwrap();
    assert_eq!(r["format"], "safetensors-dir");
    assert_eq!(r["license_verdict"], "permissive");
    hearth(&["convert", &p("hf"), &p("back.gguf")]);
    assert_eq!(
        generated(&["-m", &p("back.gguf")]),
        generated(&["-m", &p("f32.gguf")])
    );
    hearth(&["quantize", &p("hf"), &p("q4km.gguf"), "--type", "q4_k_m"]);

    let text = dir.path().join("text.txt");
    std::fs::write(
        &text,
        "the quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .unwrap();
    let out = hearth(&[
        "compare",
        &p("f32.gguf"),
        &p("q4km.gguf"),
        "--text",
        text.to_str().unwrap(),
        "--ctx",
        "64",
        "--json",
    ]);
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(c["compression_ratio"].as_f64().unwrap() > 3.0, "{c}");
    let agree = c["top1_agreement"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&agree), "{c}");

    // Bad input: a clear error, no file.
    let bad = Command::new(hearth_bin())
        .args(["quantize", &p("f32.gguf"), &p("x.gguf"), "--type", "Q7_X"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown quantization type `Q7_X`"));
    assert!(!dir.path().join("x.gguf").exists());
}

fn fails(args: &[&str]) -> String {
    let out = Command::new(hearth_bin()).args(args).output().unwrap();
    assert!(!out.status.success(), "hearth {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn compress_writes_a_model_hearth_runs_and_sweeps_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    TinySpec::llama().write(Path::new(&p("f32.gguf"))).unwrap();

    let out = hearth(&[
        "compress",
        &p("f32.gguf"),
        &p("lr.gguf"),
        "--rank",
        "32",
        "--json",
    ]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["tensors"].as_array().unwrap().len(), 8, "attn by default");
    assert!(s["params_after"].as_u64().unwrap() < s["params_before"].as_u64().unwrap());
    let r: serde_json::Value =
        serde_json::from_slice(&hearth(&["inspect", &p("lr.gguf"), "--json"]).stdout).unwrap();
    assert_eq!(
        r["parameters"], s["params_after"],
        "inspect counts the pairs"
    );
    assert_eq!(r["provenance"]["operation"], "compress");
    assert_eq!(r["provenance"]["parameters"]["rank"], "32");
    assert_eq!(r["provenance"]["parameters"]["type"], "Q8_0");
    assert_eq!(
        generated(&["-m", &p("lr.gguf")]).as_array().unwrap().len(),
        8
    );

    // Every factor at full rank in f32: the same greedy tokens as the dense model.
    let full = [
        "compress",
        &p("f32.gguf"),
        &p("full.gguf"),
        "--rank",
        "256",
        "--force",
        "--targets",
        "all",
        "--type",
        "f32",
    ];
    let msg = String::from_utf8_lossy(&hearth(&full).stdout).into_owned();
    assert!(msg.contains("llama.cpp cannot load"), "{msg}");
    assert_eq!(
        generated(&["-m", &p("full.gguf")]),
        generated(&["-m", &p("f32.gguf")])
    );

    // A rank above break-even keeps the matrix dense and says so.
    let msg = hearth(&[
        "compress",
        &p("f32.gguf"),
        &p("kv.gguf"),
        "--rank",
        "96",
        "--type",
        "f16",
    ]);
    let msg = String::from_utf8_lossy(&msg.stdout);
    assert!(msg.contains("kept dense"), "{msg}");

    let out = hearth(&[
        "compress",
        &p("f32.gguf"),
        &p("dense.gguf"),
        "--rank",
        "32",
        "--densify",
    ]);
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(msg.contains("any GGUF runtime loads it"), "{msg}");
    let r: serde_json::Value =
        serde_json::from_slice(&hearth(&["inspect", &p("dense.gguf"), "--json"]).stdout).unwrap();
    assert_eq!(r["provenance"]["parameters"]["densify"], "true");
    assert_eq!(
        generated(&["-m", &p("dense.gguf")])
            .as_array()
            .unwrap()
            .len(),
        8
    );

    let e = fails(&["compress", &p("f32.gguf"), &p("x.gguf"), "--rank", "0"]);
    assert!(e.contains("rank 0"), "{e}");
    let e = fails(&[
        "compress",
        &p("f32.gguf"),
        &p("x.gguf"),
        "--rank",
        "8",
        "--targets",
        "qq",
    ]);
    assert!(e.contains("`qq`"), "{e}");
    let e = fails(&["compress", &p("none.gguf"), &p("x.gguf"), "--rank", "32"]);
    assert!(e.contains("none.gguf"), "{e}");
    let e = fails(&["compress", &p("f32.gguf"), &p("x.gguf")]);
    assert!(e.contains("--rank"), "{e}");

    std::fs::write(
        p("text.txt"),
        "It was the best of times, it was the worst of times, it was the age of wisdom, \
         it was the age of foolishness, it was the epoch of belief, it was the epoch.",
    )
    .unwrap();
    let out = hearth(&[
        "compress",
        &p("f32.gguf"),
        "--sweep",
        "32,64",
        "--text",
        &p("text.txt"),
        "--ctx",
        "32",
        "--plot",
        &p("sweep.svg"),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert!(points[0]["params_saved_pct"].as_f64() > points[1]["params_saved_pct"].as_f64());
    let svg = std::fs::read_to_string(p("sweep.svg")).unwrap();
    assert!(svg.contains("rank 32") && svg.contains("<polyline"));
}
