//! `hearth serve` limits and policies over raw HTTP: daily budgets across restarts, keys,
//! OpenAI-shaped 4xx errors, SIGTERM draining, per-key guard policies.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{error_of, header, http, real_model, start};

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
