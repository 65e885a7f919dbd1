//! `hearth bench`: our engine and llama.cpp (through llama-cpp-python) on the same
//! GGUF, same threads and token counts, alternating over several repeats, in one table.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use hearth_engine::bench;

use super::ModelArgs;

/// Flags of `hearth bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt lengths to prefill.
    #[arg(long, value_delimiter = ',', default_value = "128,512")]
    pub prefill: Vec<usize>,
    /// Tokens to decode.
    #[arg(long, default_value_t = 128)]
    pub decode: usize,
    /// Repeats (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Python with llama-cpp-python installed (the peer). Default:
    /// ~/.cache/hearth/peer-venv/bin/python; make it with
    /// `python3 -m venv ~/.cache/hearth/peer-venv && ~/.cache/hearth/peer-venv/bin/pip install llama-cpp-python==0.3.36`.
    #[arg(long, env = "HEARTH_PEER_PYTHON")]
    pub peer_python: Option<PathBuf>,
    /// Skip the peer.
    #[arg(long)]
    pub no_peer: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub serving: super::bench_serve::ServingArgs,
    /// Sweep prompt lengths instead (e.g. 512,1024,2048,4096,8192): prefill time and KV
    /// memory per length, full-attention vs sliding-window layers.
    #[arg(long, value_delimiter = ',')]
    pub context: Vec<usize>,
    /// With --context: also draw the sweep as an SVG file.
    #[arg(long, requires = "context")]
    pub plot: Option<PathBuf>,
}

/// Runs inside the peer's Python: prints one JSON object.
const PEER_SCRIPT: &str = r#"
import json, random, resource, sys, time
import llama_cpp
import llama_cpp.llama as L
from llama_cpp import Llama
path, threads, pp, tg = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")], int(sys.argv[4])
if sys.argv[5] == "0":
    # Extra buffer types (AMX, weight repacking) off: AMX crashes on some virtual machines.
    _defaults = llama_cpp.llama_model_default_params
    def _no_extra():
        p = _defaults(); p.use_extra_bufts = False; return p
    L.llama_cpp.llama_model_default_params = _no_extra
llm = Llama(model_path=path, n_ctx=max(pp) + tg + 16, n_threads=threads, n_threads_batch=threads,
            n_batch=max(pp), n_ubatch=max(pp), verbose=False)
vocab = llm.n_vocab()
rng = random.Random(1)
def toks(n):
    return [min(1000, vocab - 1) + rng.randrange(max(vocab - 1000, 1)) for _ in range(n)]
out = {"prefill": {}}
for n in pp:
    t = toks(n); llm.reset(); t0 = time.perf_counter(); llm.eval(t)
    out["prefill"][str(n)] = n / (time.perf_counter() - t0)
llm.reset(); llm.eval(toks(8)); nxt = toks(tg); t0 = time.perf_counter()
for x in nxt:
    llm.eval([x])
out["decode"] = tg / (time.perf_counter() - t0)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would report
# the parent's (hearth's) peak whenever that is the larger.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
out["peak_rss_bytes"] = (int(hwm[0].split()[1]) * 1024 if hwm
                         else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(out))
"#;

#[derive(Default, Clone)]
struct Figures {
    prefill: Vec<Vec<f64>>,
    decode: Vec<f64>,
    peak_rss: u64,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn peer_python(args: &BenchArgs) -> Option<PathBuf> {
    if args.no_peer {
        return None;
    }
    let p = args
        .peer_python
        .clone()
        .unwrap_or_else(|| hearth_hub::cache_dir().join("peer-venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import llama_cpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(p)
    } else {
        eprintln!(
            "peer: no llama-cpp-python at {} (create it with `python3 -m venv ~/.cache/hearth/peer-venv && \
             ~/.cache/hearth/peer-venv/bin/pip install llama-cpp-python==0.3.36`); showing ours alone",
            p.display()
        );
        None
    }
}

/// Runs the peer once: with its default buffer types first, and without the extra ones
/// (AMX, weight repacking) when that fails, saying so.
fn run_peer(
    python: &PathBuf,
    model: &std::path::Path,
    threads: usize,
    args: &BenchArgs,
) -> anyhow::Result<serde_json::Value> {
    let pp: Vec<String> = args.prefill.iter().map(|n| n.to_string()).collect();
    let attempt = |extra: &str| {
        Command::new(python)
            .args(["-c", PEER_SCRIPT])
            .arg(model)
            .arg(threads.to_string())
            .arg(pp.join(","))
            .arg(args.decode.to_string())
            .arg(extra)
            .output()
            .context("running the peer")
    };
    let mut out = attempt("1")?;
    if !out.status.success() {
        eprintln!("peer: llama.cpp failed with its extra buffer types (AMX/repack); retrying without them");
        out = attempt("0")?;
    }
    anyhow::ensure!(
        out.status.success(),
        "the peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("the peer printed {line:?}"))
}

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.serving.serving {
        let path = hearth_hub::resolve(&args.model.model, &super::pull::progress_bar())?;
        let threads = match args.model.threads {
            Some(t) => t,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        return super::bench_serve::run(&args.serving, &path, threads, args.json);
    }
    anyhow::ensure!(
        args.repeats > 0 && args.decode > 0 && args.prefill.iter().all(|&n| n > 0),
        "counts must be positive"
    );
    let m = args.model.load()?;
    if !args.context.is_empty() {
        return super::bench_context::run(&m.model, &args.context, args.plot.as_deref(), args.json);
    }
    let threads = rayon::current_num_threads();
    let path = m.model.gguf().path().to_path_buf();
    let peer = peer_python(args);
    let (mut ours, mut theirs) = (Figures::default(), Figures::default());
    ours.prefill = vec![Vec::new(); args.prefill.len()];
    theirs.prefill = vec![Vec::new(); args.prefill.len()];
    for r in 0..args.repeats {
        eprintln!("repeat {}/{}: hearth", r + 1, args.repeats);
        for (i, &n) in args.prefill.iter().enumerate() {
            ours.prefill[i].push(bench::prefill_tok_s(&m.model, n)?);
        }
        ours.decode
            .push(bench::decode_tok_s(&m.model, args.decode)?);
        if let Some(py) = &peer {
            eprintln!("repeat {}/{}: llama.cpp", r + 1, args.repeats);
            let v = run_peer(py, &path, threads, args)?;
            for (i, n) in args.prefill.iter().enumerate() {
                theirs.prefill[i].push(v["prefill"][n.to_string()].as_f64().unwrap_or(f64::NAN));
            }
            theirs.decode.push(v["decode"].as_f64().unwrap_or(f64::NAN));
            theirs.peak_rss = theirs
                .peak_rss
                .max(v["peak_rss_bytes"].as_u64().unwrap_or(0));
        }
    }
    ours.peak_rss = peak_rss_bytes();
    eprintln!("measuring memory bandwidth");
    let bandwidth = bench::memory_read_bandwidth(5);
    let bytes_per_token = bench::weight_bytes_per_token(&m.model) as f64;
    let limit = bandwidth / bytes_per_token;
    report(
        args,
        &path,
        threads,
        bandwidth,
        limit,
        &ours,
        peer.is_some().then_some(&theirs),
    );
    Ok(())
}

fn report(
    args: &BenchArgs,
    path: &std::path::Path,
    threads: usize,
    bw: f64,
    limit: f64,
    ours: &Figures,
    theirs: Option<&Figures>,
) {
    let mut rows: Vec<(String, f64, Option<f64>)> = args
        .prefill
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                format!("prefill {n} tok/s"),
                median(&ours.prefill[i]),
                theirs.map(|t| median(&t.prefill[i])),
            )
        })
        .collect();
    rows.push((
        format!("decode {} tok/s", args.decode),
        median(&ours.decode),
        theirs.map(|t| median(&t.decode)),
    ));
    rows.push((
        "peak RSS MB".into(),
        ours.peak_rss as f64 / 1e6,
        theirs.map(|t| t.peak_rss as f64 / 1e6),
    ));
    let decode_frac = median(&ours.decode) / limit;
    let peer_frac = theirs.map(|t| median(&t.decode) / limit);
    if args.json {
        let v = serde_json::json!({
            "model": path, "threads": threads, "kernels": hearth_model::kernel_isa(),
            "memory_bandwidth_gb_s": bw / 1e9,
            "decode_limit_tok_s": limit,
            "rows": rows.iter().map(|(k, o, p)| serde_json::json!({
                "metric": k, "hearth": o, "llama_cpp": p, "ratio": p.map(|p| o / p),
            })).collect::<Vec<_>>(),
            "decode_fraction_of_bandwidth_limit": {"hearth": decode_frac, "llama_cpp": peer_frac},
        });
        println!("{v}");
        return;
    }
    println!(
        "model {} | threads {threads} | kernels {} | memory read bandwidth {:.1} GB/s | decode limit {:.1} tok/s",
        path.display(),
        hearth_model::kernel_isa(),
        bw / 1e9,
        limit
    );
    println!(
        "{:<22} {:>10} {:>10} {:>8}",
        "", "hearth", "llama.cpp", "ratio"
    );
    for (k, o, p) in &rows {
        match p {
            Some(p) => println!("{k:<22} {o:>10.1} {p:>10.1} {:>8.2}", o / p),
            None => println!("{k:<22} {o:>10.1} {:>10} {:>8}", "-", "-"),
        }
    }
    match peer_frac {
        Some(p) => println!(
            "{:<22} {:>9.0}% {:>9.0}%",
            "decode / bw limit",
            decode_frac * 100.0,
            p * 100.0
        ),
        None => println!("{:<22} {:>9.0}%", "decode / bw limit", decode_frac * 100.0),
    }
}
