//! `hearth serve` as users run it: the real binary on 127.0.0.1 with the real SmolLM2
//! model, driven by the official `openai` Python client, llama.cpp's own server tests,
//! and raw HTTP for budgets, errors and shutdown.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn real_model() -> Option<PathBuf> {
    let info = hearth_hub::find_model("smollm2-135m")?;
    let p = hearth_hub::cache_dir().join("models").join(info.file_name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} absent (run `hearth pull smollm2-135m`)",
            p.display()
        );
        None
    }
}

fn venv_python() -> Option<PathBuf> {
    let p = hearth_hub::cache_dir().join("venv-server/bin/python");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} absent (.ci/fetch-assets makes it: openai, pytest, requests)",
            p.display()
        );
        None
    }
}

/// Starts `hearth serve` on a free port and waits until `/health` is 200.
fn start(model: &Path, db: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "serve",
            "--port",
            "0",
            "-t",
            "2",
            "--kv-cache-mb",
            "256",
            "--model",
        ])
        .arg(model)
        .arg("--usage-db")
        .arg(db)
        .args(extra)
        .env("HEARTH_LOG", "warn,hearth_server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "server exited early");
        if let Some(rest) = line.trim().strip_prefix("hearth: listening on http://") {
            addr = rest.split_whitespace().next().map(str::to_string);
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    let s = Server {
        child,
        addr: addr.unwrap(),
    };
    let t = Instant::now();
    while http(&s.addr, "GET", "/health", &[], "").0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(60), "model never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    s
}

/// A minimal HTTP/1.1 request; returns status, headers (lower-cased names) and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, Vec::new(), String::new());
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).is_err() {
        return (0, Vec::new(), String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return (0, Vec::new(), raw);
    };
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn error_of(body: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let e = v["error"].clone();
    assert!(e["message"].is_string() && e["type"].is_string(), "{body}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{body}"
    );
    e
}

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
    // llama-server (an external server cannot see the test's settings).
    let groups: [(&[&str], &str, &str); 3] = [
        (
            &["--api-key", "sk-this-is-the-secret-key", "--cors-origins", "*"],
            "unit/test_security.py",
            "test_access_public_endpoint or test_access_static_assets or api_key or test_cors_options",
        ),
        (
            &["--api-key", "sk-this-is-the-secret-key"],
            "unit/test_security.py",
            "test_cors_origins_localhost",
        ),
        (
            &[],
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

fn chat(addr: &str, key: &str, max_tokens: u32) -> (u16, Vec<(String, String)>, String) {
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"Tell me a story."}}],"max_tokens":{max_tokens},"temperature":0}}"#
    );
    http(
        addr,
        "POST",
        "/v1/chat/completions",
        &[("Authorization", &format!("Bearer {key}"))],
        &body,
    )
}

#[test]
fn a_daily_token_budget_is_enforced_and_survives_a_restart() {
    let Some(model) = real_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.sqlite");
    let add = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "keys",
            "add",
            "alice",
            "--tokens-per-day",
            "200",
            "--usage-db",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let key = String::from_utf8(add.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("hk-"));
    let s = start(&model, &db, &[]);
    // Keys exist, so requests without one are refused.
    let (code, _, body) = http(&s.addr, "GET", "/v1/models", &[], "");
    assert_eq!(code, 401, "{body}");
    assert_eq!(error_of(&body)["type"], "authentication_error");
    let mut spent = 0;
    let mut ok = 0;
    loop {
        let (code, h, body) = chat(&s.addr, &key, 40);
        if code == 429 {
            assert_eq!(error_of(&body)["type"], "rate_limit_error");
            let wait: u64 = header(&h, "retry-after").unwrap().parse().unwrap();
            assert!((1..=86_400).contains(&wait));
            break;
        }
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        spent += v["usage"]["total_tokens"].as_u64().unwrap();
        ok += 1;
        assert!(ok < 20, "the budget never ran out");
    }
    assert!(
        spent >= 200,
        "refused only once the budget was spent ({spent})"
    );
    drop(s);
    // After a restart the budget is still spent.
    let s = start(&model, &db, &[]);
    assert_eq!(chat(&s.addr, &key, 4).0, 429);
    let usage = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["keys", "usage", "--usage-db"])
        .arg(&db)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&usage.stdout);
    assert!(table.contains("db-1"), "{table}");
    // Revoked keys are refused.
    let rev = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["keys", "revoke", "alice", "--usage-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(rev.status.success());
    assert_eq!(chat(&s.addr, &key, 4).0, 401);
}

#[test]
fn client_errors_are_4xx_in_openai_shape_and_sigterm_drains() {
    let Some(model) = real_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(&model, &dir.path().join("u.sqlite"), &[]);
    let cases: &[(&str, &str, &str, u16, Option<&str>)] = &[
        ("POST", "/v1/chat/completions", "{not json", 400, None),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"m","messages":"hi"}"#,
            400,
            Some("messages"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":99}"#,
            400,
            Some("n"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
            400,
            Some("max_tokens"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
            400,
            Some("messages[0].content[0]"),
        ),
        (
            "POST",
            "/v1/completions",
            r#"{"model":"m","prompt":[999999999]}"#,
            400,
            Some("prompt"),
        ),
        (
            "POST",
            "/v1/completions",
            r#"{"model":"m","prompt":"x","logit_bias":{"1":5}}"#,
            400,
            Some("logit_bias"),
        ),
        (
            "POST",
            "/detokenize",
            r#"{"tokens":[-1]}"#,
            400,
            Some("tokens[0]"),
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            400,
            Some("model"),
        ),
        ("GET", "/v1/nothing", "", 404, None),
        ("GET", "/v1/chat/completions", "", 405, None),
    ];
    for (method, path, body, want, param) in cases {
        let (code, _, text) = http(&s.addr, method, path, &[], body);
        assert_eq!(code, *want, "{method} {path} {body}: {text}");
        let e = error_of(&text);
        if let Some(p) = param {
            assert_eq!(e["param"], *p, "{text}");
        }
    }
    let (code, _, text) = http(
        &s.addr,
        "POST",
        "/generate",
        &[],
        r#"{"prompt":"Once upon a time","max_tokens":5}"#,
    );
    assert_eq!(code, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["text"].is_string() && v["completion_tokens"] == 5);
    let (code, _, text) = http(
        &s.addr,
        "POST",
        "/tokenize",
        &[],
        r#"{"content":"Hello world"}"#,
    );
    assert_eq!(code, 200);
    let ids: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (_, _, back) = http(
        &s.addr,
        "POST",
        "/detokenize",
        &[],
        &format!(r#"{{"tokens":{}}}"#, ids["tokens"]),
    );
    assert!(back.contains("Hello world"), "{back}");
    // SIGTERM while a request runs: it finishes, then the server exits 0.
    let addr = s.addr.clone();
    let inflight = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/v1/completions",
            &[],
            r#"{"model":"m","prompt":"Count: 1, 2, 3,","max_tokens":120,"temperature":0,"ignore_eos":true}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (code, _, text) = inflight.join().unwrap();
    assert_eq!(code, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 120);
    let t = Instant::now();
    loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            assert!(st.success(), "exit status {st}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
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

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cmd))
            .find(|p| p.is_file())
    })
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
        &["--api-key", "sk-comply"],
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

fn completion(addr: &str, key: &str, prompt: &str, extra: &str) -> serde_json::Value {
    let body = format!(
        r#"{{"model":"m","prompt":{},"max_tokens":16,"temperature":0{extra}}}"#,
        serde_json::to_string(prompt).unwrap()
    );
    let (code, _, text) = http(
        addr,
        "POST",
        "/v1/completions",
        &[("Authorization", &format!("Bearer {key}"))],
        &body,
    );
    assert_eq!(code, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn per_key_guard_policies_redact_inputs_and_block_outputs() {
    let Some(model) = real_model() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.sqlite");
    let key = |name: &str, flags: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["keys", "add", name, "--usage-db"])
            .arg(&db)
            .args(flags)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let open = key("open", &[]);
    let redact = key("redact", &["--input-policy", "redact"]);
    let strict = key(
        "strict",
        &["--input-policy", "block", "--output-policy", "block"],
    );
    let s = start(&model, &db, &[]);
    // The model repeats an e-mail address it was shown...
    let leak = "My email is john.doe@example.com. Again, my email is";
    let v = completion(&s.addr, &open, leak, "");
    assert!(
        v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("john.doe@example.com"),
        "{v}"
    );
    // ...a redacting key's prompt reaches the model with a placeholder (echo shows it)...
    let v = completion(&s.addr, &redact, leak, r#","echo":true"#);
    let text = v["choices"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("My email is <EMAIL_1>.") && !text.contains("john.doe"),
        "{text}"
    );
    // ...a blocking key's prompt with personal data is refused, naming the kind only.
    let body = format!(
        r#"{{"model":"m","prompt":{},"max_tokens":4}}"#,
        serde_json::to_string(leak).unwrap()
    );
    let (code, _, text) = http(
        &s.addr,
        "POST",
        "/v1/completions",
        &[("Authorization", &format!("Bearer {strict}"))],
        &body,
    );
    assert_eq!(code, 400, "{text}");
    let e = error_of(&text);
    assert_eq!(e["code"], "content_filter");
    assert!(
        !text.contains("john.doe"),
        "the error never echoes the data: {text}"
    );
    // Output block: a reply that turns threatening stops with content_filter, streamed or not.
    let threat = "I will kill you.\nI will kill you.\nI will kill you.\n";
    let v = completion(&s.addr, &open, threat, "");
    assert_ne!(v["choices"][0]["finish_reason"], "content_filter", "{v}");
    let moderation_key = key("mod", &["--output-policy", "block"]);
    let v = completion(&s.addr, &moderation_key, threat, "");
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter", "{v}");
    assert!(
        !v["choices"][0]["text"].as_str().unwrap().contains("kill"),
        "{v}"
    );
    let body = format!(
        r#"{{"model":"m","prompt":{},"max_tokens":16,"temperature":0,"stream":true}}"#,
        serde_json::to_string(threat).unwrap()
    );
    let (code, _, sse) = http(
        &s.addr,
        "POST",
        "/v1/completions",
        &[("Authorization", &format!("Bearer {moderation_key}"))],
        &body,
    );
    assert_eq!(code, 200);
    assert!(sse.contains(r#""finish_reason":"content_filter""#), "{sse}");
    assert!(
        !sse.contains("kill"),
        "no part of the blocked text was streamed: {sse}"
    );
    // The counters show it; the usage database holds no text at all.
    let (_, _, m) = http(&s.addr, "GET", "/metrics", &[], "");
    assert!(
        m.contains(r#"hearth:guard_events_total{event="output_blocked"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(r#"hearth:guard_events_total{event="input_redacted"} 1"#),
        "{m}"
    );
    drop(s);
    let raw = std::fs::read(&db).unwrap();
    assert!(
        !raw.windows(8).any(|w| w == b"john.doe"),
        "raw PII in the usage database"
    );
}
