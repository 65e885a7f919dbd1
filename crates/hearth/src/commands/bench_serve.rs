//! `hearth bench --serving`: `hearth serve` against llama.cpp's `llama-server` on the same
//! GGUF and threads, both on 127.0.0.1: aggregate generated tokens per second with 1, 4,
//! 8 and 16 concurrent clients (llama-server with as many slots), plus our prefix cache:
//! time to first token of a request sharing a long prefix against a cold one, and
//! throughput with the cache off against on at a 0% hit rate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Flags of the serving benchmark (part of `hearth bench`).
#[derive(clap::Args, Debug, Clone)]
pub struct ServingArgs {
    /// Run the serving benchmark instead of prefill/decode.
    #[arg(long)]
    pub serving: bool,
    /// Concurrent client counts.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16")]
    pub streams: Vec<usize>,
    /// Prompt tokens per request.
    #[arg(long, default_value_t = 128)]
    pub prompt_tokens: usize,
    /// Generated tokens per request.
    #[arg(long, default_value_t = 64)]
    pub gen_tokens: usize,
    /// Requests per client.
    #[arg(long, default_value_t = 2)]
    pub requests_per_client: usize,
    /// llama.cpp's llama-server binary (default: ~/.cache/hearth/llama-server/bin/llama-server;
    /// tools/build_llama_server.sh builds it from the llama-cpp-python 0.3.36 sdist).
    #[arg(long, env = "HEARTH_LLAMA_SERVER")]
    pub llama_server: Option<PathBuf>,
}

struct Proc {
    child: Child,
    addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(addr: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // llama-server may answer chunked; the JSON object is what we need.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if b >= a => &body[a..=b],
        _ => body,
    };
    Ok((status, body.to_string()))
}

fn get_status(addr: &str, path: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn wait_ready(p: &mut Proc, what: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    while get_status(&p.addr, "/health") != 200 {
        if let Some(st) = p.child.try_wait()? {
            bail!("{what} exited ({st}) before it was ready");
        }
        if t.elapsed() > Duration::from_secs(180) {
            bail!("{what} not ready after 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_ours(model: &Path, threads: usize, slots: usize, extra: &[&str]) -> anyhow::Result<Proc> {
    let db = std::env::temp_dir().join(format!("hearth-bench-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--port", "0", "--max-running", &slots.to_string()])
        .args([
            "-t",
            &threads.to_string(),
            "--kv-cache-mb",
            "512",
            "--model",
        ])
        .arg(model)
        .arg("--usage-db")
        .arg(&db)
        .args(extra)
        .env("HEARTH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut err = BufReader::new(child.stderr.take().context("no stderr")?);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if err.read_line(&mut line)? == 0 {
            bail!("hearth serve exited before listening");
        }
        if let Some(rest) = line.trim().strip_prefix("hearth: listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    let mut p = Proc { child, addr };
    wait_ready(&mut p, "hearth serve")?;
    Ok(p)
}

fn start_peer(
    bin: &Path,
    model: &Path,
    threads: usize,
    slots: usize,
    ctx_per_slot: usize,
) -> anyhow::Result<Proc> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-m"])
        .arg(model)
        .args(["-t", &threads.to_string(), "-tb", &threads.to_string()])
        .args([
            "-np",
            &slots.to_string(),
            "-c",
            &(slots * ctx_per_slot).to_string(),
        ])
        .args(["--no-webui", "--no-repack", "-b", "512", "-ub", "512"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut p = Proc {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    wait_ready(&mut p, "llama-server")?;
    Ok(p)
}

/// Random prompt ids (distinct per request: no prefix sharing).
fn prompt(seed: u64, n: usize) -> Vec<u32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1000 + (x % 20_000) as u32
        })
        .collect()
}

/// Aggregate generated tokens per second with `clients` concurrent clients.
fn throughput(addr: &str, a: &ServingArgs, clients: usize, salt: u64) -> anyhow::Result<f64> {
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.to_string();
            let a = a.clone();
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut n = 0;
                for r in 0..a.requests_per_client {
                    let ids = prompt(salt * 1_000_003 + (c * 1000 + r) as u64, a.prompt_tokens);
                    let body = serde_json::json!({
                        "model": "m", "prompt": ids, "max_tokens": a.gen_tokens,
                        "temperature": 0, "ignore_eos": true,
                    })
                    .to_string();
                    let (code, text) = post(&addr, "/v1/completions", &body)?;
                    if code != 200 {
                        bail!("HTTP {code}: {text}");
                    }
                    let v: serde_json::Value = serde_json::from_str(&text)?;
                    n += v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as usize;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    }
    Ok(total as f64 / t.elapsed().as_secs_f64())
}

/// Seconds to the first token of a `max_tokens: 1` request.
fn ttft(addr: &str, ids: &[u32]) -> anyhow::Result<f64> {
    let body = serde_json::json!({"model": "m", "prompt": ids, "max_tokens": 1, "temperature": 0})
        .to_string();
    let t = Instant::now();
    let (code, text) = post(addr, "/v1/completions", &body)?;
    if code != 200 {
        bail!("HTTP {code}: {text}");
    }
    Ok(t.elapsed().as_secs_f64())
}

pub fn run(a: &ServingArgs, model: &Path, threads: usize, json: bool) -> anyhow::Result<()> {
    let peer = a
        .llama_server
        .clone()
        .unwrap_or_else(|| hearth_hub::cache_dir().join("llama-server/bin/llama-server"));
    let peer = peer.exists().then_some(peer);
    if peer.is_none() {
        eprintln!("llama-server not found (build it with tools/build_llama_server.sh); ours alone");
    }
    let ctx_per_slot = a.prompt_tokens + a.gen_tokens + 16;
    let mut rows = Vec::new();
    for &s in &a.streams {
        let ours = {
            let p = start_ours(model, threads, s.max(1), &[])?;
            throughput(&p.addr, a, s, 1)?
        };
        let theirs = match &peer {
            Some(bin) => {
                let p = start_peer(bin, model, threads, s.max(1), ctx_per_slot)?;
                Some(throughput(&p.addr, a, s, 2)?)
            }
            None => None,
        };
        eprintln!(
            "streams {s}: ours {ours:.1} tok/s, llama-server {}",
            theirs.map_or("-".into(), |t| format!("{t:.1} tok/s"))
        );
        rows.push((s, ours, theirs));
    }
    // Prefix cache: a 1,000-token shared prefix, and the cost at a 0% hit rate.
    let p = start_ours(model, threads, 8, &[])?;
    let shared = prompt(77, 1000);
    let cold = ttft(&p.addr, &[shared.clone(), prompt(78, 16)].concat())?;
    let warm = ttft(&p.addr, &[shared, prompt(79, 16)].concat())?;
    let with_cache = throughput(&p.addr, a, 8, 3)?;
    drop(p);
    let p = start_ours(model, threads, 8, &["--no-prefix-cache"])?;
    let without_cache = throughput(&p.addr, a, 8, 4)?;
    drop(p);
    if json {
        let v = serde_json::json!({
            "prompt_tokens": a.prompt_tokens, "gen_tokens": a.gen_tokens, "threads": threads,
            "throughput": rows.iter().map(|(s, o, t)| serde_json::json!({
                "streams": s, "ours_tok_s": o, "llama_server_tok_s": t, "ratio": t.map(|t| o / t),
            })).collect::<Vec<_>>(),
            "prefix_cache": {
                "ttft_cold_s": cold, "ttft_shared_1000_s": warm, "ttft_ratio": warm / cold,
                "tok_s_cache_on_0pct_hits": with_cache, "tok_s_cache_off": without_cache,
                "cost": 1.0 - with_cache / without_cache,
            },
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "serving: {} prompt + {} generated tokens per request, {} requests per client, {threads} threads",
        a.prompt_tokens, a.gen_tokens, a.requests_per_client
    );
    println!(
        "{:>8} {:>14} {:>20} {:>8}",
        "streams", "hearth tok/s", "llama-server tok/s", "ratio"
    );
    for (s, o, t) in &rows {
        match t {
            Some(t) => println!("{s:>8} {o:>14.1} {t:>20.1} {:>7.2}x", o / t),
            None => println!("{s:>8} {o:>14.1} {:>20} {:>8}", "-", "-"),
        }
    }
    println!(
        "prefix cache: time to first token {:.0} ms cold, {:.0} ms sharing a 1,000-token prefix ({:.0}%)",
        cold * 1e3,
        warm * 1e3,
        100.0 * warm / cold
    );
    println!(
        "prefix cache at 0% hits: {with_cache:.1} tok/s on, {without_cache:.1} tok/s off (cost {:+.1}%)",
        100.0 * (1.0 - with_cache / without_cache)
    );
    Ok(())
}
