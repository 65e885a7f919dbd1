//! `hearth serve` against the clients people use: the official `openai` Python client,
//! llama.cpp's own server tests, llm-comply, schemathesis on our OpenAPI document, and
//! the chat page in headless Chromium; real binary, real SmolLM2, 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{error_of, header, http, real_model, start, venv_python, which};

#[test]
fn the_official_openai_client_works_against_hearth_serve() {
    let (Some(model), Some(python)) = (real_model(), venv_python()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        &model,
        &dir.path().join("u.sqlite"),
        &["--api-key", "sk-test"],
    );
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/server/openai_client.py"
        ))
        .arg(format!("http://{}", s.addr))
        .arg("sk-test")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    eprintln!("{text}");
    // The requests above show up in the metrics under vLLM's names.
    let (code, _, m) = http(&s.addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    for name in [
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_hits_total",
        "vllm:time_to_first_token_seconds_bucket",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
    let hits: f64 = m
        .lines()
        .find(|l| l.starts_with("vllm:prefix_cache_hits_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(hits > 0.0, "repeated prompts hit the prefix cache");
}

#[test]
fn llama_cpp_server_security_and_invalid_request_tests_pass() {
    let (Some(model), Some(python)) = (real_model(), venv_python()) else {
        return;
    };
    let tests = hearth_hub::cache_dir().join("llama-server-tests");
    if !tests.join("unit/test_security.py").exists() {
        eprintln!(
            "SKIPPED: {} absent (.ci/fetch-assets extracts it)",
            tests.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Each group of tests runs against the server configured as the test configures
    // llama-server (an external server cannot see the test's settings): its preset caps
    // replies at 64 tokens (`--n-predict 64`), which requests without `max_tokens` rely on.
    let groups: [(&[&str], &str, &str); 3] = [
        (
            &[
                "--api-key",
                "sk-this-is-the-secret-key",
                "--cors-origins",
                "*",
                "--default-max-tokens",
                "64",
            ],
            "unit/test_security.py",
            "test_access_public_endpoint or test_access_static_assets or api_key or test_cors_options",
        ),
        (
            &[
                "--api-key",
                "sk-this-is-the-secret-key",
                "--default-max-tokens",
                "64",
            ],
            "unit/test_security.py",
            "test_cors_origins_localhost",
        ),
        (
            &["--default-max-tokens", "64"],
            "unit/test_chat_completion.py",
            "test_invalid_chat_completion_req or test_completion_with_invalid_grammar",
        ),
    ];
    for (i, (flags, file, select)) in groups.iter().enumerate() {
        let s = start(&model, &dir.path().join(format!("u{i}.sqlite")), flags);
        let port = s.addr.rsplit(':').next().unwrap().to_string();
        let out = Command::new(&python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                file,
                "-k",
                select,
            ])
            .current_dir(&tests)
            .env("DEBUG_EXTERNAL", "1")
            .env("PORT", &port)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file} -k '{select}':\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "{file} -k '{select}': {}",
            text.lines().last().unwrap_or("")
        );
    }
}

#[test]
fn the_chat_page_streams_in_headless_chromium() {
    let (Some(model), Some(python)) = (real_model(), venv_python()) else {
        return;
    };
    if which("chromium").is_none() {
        eprintln!("SKIPPED: no chromium on PATH (Debian package 'chromium'; .ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = start(&model, &dir.path().join("u.sqlite"), &[]);
    let (code, h, page) = http(&s.addr, "GET", "/", &[], "");
    assert_eq!(code, 200);
    assert!(header(&h, "content-type").unwrap().starts_with("text/html"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads nothing from outside"
    );
    let out = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/server/chat_page.py"
        ))
        .arg(format!("http://{}", s.addr))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // The stopped reply was cancelled in the engine, not left running.
    let t = Instant::now();
    loop {
        let (_, _, m) = http(&s.addr, "GET", "/metrics", &[], "");
        let running = m
            .lines()
            .find(|l| l.starts_with("vllm:num_requests_running"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        if running == 0.0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the stopped request kept running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn schemathesis_finds_no_server_error_in_our_openapi_document() {
    let Some(python) = venv_python() else {
        return;
    };
    let st = python.with_file_name("st");
    if !st.exists() {
        eprintln!(
            "SKIPPED: {} absent (.ci/fetch-assets installs schemathesis)",
            st.display()
        );
        return;
    }
    // A tiny random model: fuzzed requests may ask for the whole context.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    hearth_model::tiny::TinySpec::llama().write(&model).unwrap();
    let s = start(&model, &dir.path().join("u.sqlite"), &[]);
    let (code, _, doc) = http(&s.addr, "GET", "/openapi.json", &[], "");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
    let out = Command::new(&st)
        .args(["run", &format!("http://{}/openapi.json", s.addr)])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--phases",
            "examples,coverage,fuzzing",
        ])
        .args(["--request-timeout", "60", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        text.lines().rev().take(6).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn llm_comply_openai_chat_passes_except_tools_and_images_which_get_a_clean_400() {
    let (Some(model), Some(python)) = (real_model(), venv_python()) else {
        return;
    };
    let comply = python.with_file_name("llm-comply");
    if !comply.exists() {
        eprintln!(
            "SKIPPED: {} absent (.ci/fetch-assets installs llm-comply)",
            comply.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        &model,
        &dir.path().join("u.sqlite"),
        // Greedy by default: the checks want a reply that ends by itself, which a
        // 135M model sampled at temperature 1 does not always give within the cap.
        &[
            "--api-key",
            "sk-comply",
            "--default-max-tokens",
            "256",
            "--default-temperature",
            "0",
        ],
    );
    let out = Command::new(&comply)
        .args([
            "run",
            "--format",
            "openai-chat",
            "--json",
            "--timeout",
            "300",
        ])
        .args([
            "-u",
            &format!("http://{}/v1", s.addr),
            "-k",
            "sk-comply",
            "-m",
            "smollm2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let start_json = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON report: {text}"));
    let report: serde_json::Value = serde_json::from_str(&text[start_json..]).unwrap();
    let results = report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"));
    assert!(results.len() >= 8, "{report}");
    for r in results {
        let id = r["id"].as_str().unwrap_or_default();
        let status = r["status"].as_str().unwrap_or_default();
        match id {
            // Features we do not have: refused with a clean 400, checked below.
            "chat-tool-calling" | "chat-image-input" => assert_eq!(status, "failed", "{r}"),
            _ => assert!(status == "passed" || status == "skipped", "{id}: {r}"),
        }
    }
    for body in [
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
    ] {
        let (code, _, text) = http(
            &s.addr,
            "POST",
            "/v1/chat/completions",
            &[("Authorization", "Bearer sk-comply")],
            body,
        );
        assert_eq!(code, 400, "{text}");
        assert_eq!(error_of(&text)["code"], "unsupported_parameter");
    }
}
