//! The `hearth` binary end to end: on a tiny model it writes itself, and on the real
//! models where they are cached.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hearth_model::tiny::TinySpec;

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tiny(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.gguf");
    TinySpec::llama().write(&p).unwrap();
    p
}

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

#[test]
fn generate_json_is_deterministic_at_temperature_zero() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny(dir.path());
    let m = m.to_str().unwrap();
    let args = [
        "generate",
        "-m",
        m,
        "-p",
        "hello",
        "-n",
        "8",
        "--temperature",
        "0",
        "--json",
        "-t",
        "1",
    ];
    let a = hearth(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let v: serde_json::Value = serde_json::from_str(stdout(&a).trim()).unwrap();
    for key in [
        "prompt_ids",
        "generated_ids",
        "text",
        "prefill_tok_s",
        "decode_tok_s",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["generated_ids"].as_array().unwrap().len(), 8);
    assert_eq!(v["prompt_ids"].as_array().unwrap().len(), 5);
    let b = hearth(&args);
    let vb: serde_json::Value = serde_json::from_str(stdout(&b).trim()).unwrap();
    assert_eq!(v["generated_ids"], vb["generated_ids"]);
}

#[test]
fn bad_model_and_bad_flags_give_clear_errors() {
    let o = hearth(&["generate", "-m", "/nonexistent/model.gguf", "-p", "hi"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/model.gguf"),
        "{}",
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"this is not a model").unwrap();
    let o = hearth(&["tokenize", "-m", junk.to_str().unwrap(), "--text", "hi"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("junk.gguf") && stderr(&o).contains("not a GGUF file"),
        "{}",
        stderr(&o)
    );
    let m = tiny(dir.path());
    let o = hearth(&[
        "generate",
        "-m",
        m.to_str().unwrap(),
        "-p",
        "hi",
        "--top-p",
        "3",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("top_p"), "{}", stderr(&o));
}

#[test]
fn chat_answers_a_conversation_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "chat",
            "-m",
            m.to_str().unwrap(),
            "-n",
            "5",
            "--temperature",
            "0",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]"#)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).trim().is_empty());
}

#[test]
fn perplexity_on_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = tiny(dir.path());
    let text = dir.path().join("t.txt");
    let body = "the quick brown fox jumps over the lazy dog ".repeat(10);
    std::fs::write(&text, &body).unwrap();
    let t = hearth(&[
        "tokenize",
        "-m",
        m.to_str().unwrap(),
        "--text",
        &body,
        "--json",
    ]);
    let n_tokens = serde_json::from_str::<serde_json::Value>(stdout(&t).trim()).unwrap()["ids"]
        .as_array()
        .unwrap()
        .len();
    let o = hearth(&[
        "perplexity",
        "-m",
        m.to_str().unwrap(),
        "-f",
        text.to_str().unwrap(),
        "--ctx",
        "64",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let chunks = n_tokens / 64;
    assert_eq!(v["n_chunks"], chunks);
    assert_eq!(v["scored_tokens"], chunks * 31);
    assert!(v["ppl"].as_f64().unwrap() > 1.0);
    let o = hearth(&[
        "perplexity",
        "-m",
        m.to_str().unwrap(),
        "-f",
        "/nonexistent.txt",
    ]);
    assert!(stderr(&o).contains("/nonexistent.txt"), "{}", stderr(&o));
}

#[test]
fn tokenize_matches_llama_cpp_on_the_real_models() {
    for (name, _) in [("gemma3-270m", 0), ("smollm2-135m", 0)] {
        let Some(path) = real(name) else { continue };
        let golden_path = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/golden"
        ))
        .join(name)
        .join("tokenize.json");
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(golden_path).unwrap()).unwrap();
        for case in golden["cases"].as_array().unwrap().iter().take(6) {
            let text = case["text"].as_str().unwrap();
            let o = hearth(&[
                "tokenize",
                "-m",
                path.to_str().unwrap(),
                "--text",
                text,
                "--json",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
            assert_eq!(v["ids"], case["ids"], "{name}: {text:?}");
        }
    }
}

#[test]
fn pull_prints_the_cached_path_last() {
    if real("smollm2-135m").is_none() {
        return;
    }
    let o = hearth(&["pull", "smollm2-135m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    assert!(
        Path::new(last).is_absolute() && Path::new(last).exists(),
        "{last}"
    );
    assert!(last.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"));
}

#[test]
fn context_sweep_shows_the_window_capping_kv_memory() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("gemma.gguf");
    TinySpec::gemma3().write(&model).unwrap();
    let plot = dir.path().join("ctx.svg");
    let m = model.to_str().unwrap();
    let out = hearth(&[
        "bench",
        "-m",
        m,
        "-t",
        "1",
        "--context",
        "8,16,64",
        "--json",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let rows = v["context"].as_array().unwrap();
    let col = |k: &str| {
        rows.iter()
            .map(|r| r[k].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let (global, window, all) = (
        col("kv_global_bytes"),
        col("kv_window_bytes"),
        col("kv_all_global_bytes"),
    );
    // Full-attention layers grow with the prompt; windowed ones stop at the window (16).
    assert!(global[0] < global[1] && global[1] < global[2], "{global:?}");
    assert!(
        window[0] < window[1] && window[1] == window[2],
        "{window:?}"
    );
    assert!(global[2] + window[2] < all[2], "{v}");
    assert!(std::fs::read_to_string(&plot)
        .unwrap()
        .contains("<polyline"));
    // Past the model's context is a clear error.
    let out = hearth(&["bench", "-m", m, "--context", "100000"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("between 1 and the model's context"),
        "{}",
        stderr(&out)
    );
}
