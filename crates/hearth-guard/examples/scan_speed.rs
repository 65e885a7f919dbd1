//! Throughput of the full recognizer set, in MB/s, on a synthetic mixed text (mostly
//! prose with PII sprinkled in, English and Chinese): whole text on one thread, and one
//! scanner shared by one thread per core over lines. The target is 50 MB/s on 2 cores.
//!
//! The machine this runs on may be shared, so besides wall-clock MB/s it prints MB per
//! CPU-second of the scanning threads (from `/proc/thread-self/stat`, Linux only): that
//! figure does not drop when other processes take the cores.
//! Run: `cargo run --release -p hearth-guard --example scan_speed`.

use std::time::Instant;

use hearth_guard::{PiiKind, Scanner};

const LINES: &[&str] = &[
    "The quarterly report was sent to the whole team on Monday, and nobody replied.",
    "Please contact jane.doe@example.com or call +1-415-555-2671 before 5 pm.",
    "会议记录：今天下午三点在三楼会议室讨论了新产品的发布计划，预计下月上线。",
    "客户电话13812345678，身份证号11010519491231002X，请核实后回复。",
    "Order #2024-00123 shipped on 2024-05-06 at 10:30; tracking 1Z999AA10123456784.",
    "Server 192.168.10.24 and fe80::1ff:fe23:4567:890a answered; card 4111 1111 1111 1111 declined.",
    "Transfer to DE89 3704 0044 0532 0130 00 with reference INV-88231, thanks!",
    "export OPENAI_API_KEY=sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI and restart the service.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, 1859.",
    "Ask Danielle Rodriguez (1224 Diane Rue Suite 757, Wilsonport, MS 45503) or Brixtonlaan 380.",
];

/// CPU seconds this thread has used (user + system), if the platform tells.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Runs `f`, returning its result, wall seconds and this thread's CPU seconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, Option<f64>) {
    let cpu0 = thread_cpu_seconds();
    let t = Instant::now();
    let out = f();
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu0.zip(thread_cpu_seconds()).map(|(a, b)| b - a);
    (out, wall, cpu)
}

fn per_cpu(mb: f64, cpu: Option<f64>) -> String {
    match cpu {
        Some(c) if c > 0.0 => format!("{:8.1} MB/cpu-s", mb / c),
        _ => "       n/a".to_string(),
    }
}

fn main() {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 16 << 20 {
        text.push_str(LINES[i % LINES.len()]);
        text.push('\n');
        i += 1;
    }
    let scanner = Scanner::new();
    let mb = text.len() as f64 / 1e6;
    let lines: Vec<&str> = text.lines().collect();
    println!("text: {mb:.1} MB, {} lines", lines.len());

    for kind in PiiKind::ALL {
        let only = Scanner::with_kinds(&[kind]);
        let (n, wall, cpu) = timed(|| only.scan(&text).len());
        println!(
            "  {:<16} {:8.1} MB/s {} ({n} findings)",
            kind.label(),
            mb / wall,
            per_cpu(mb, cpu)
        );
    }

    let mut best = (0, f64::MAX, None);
    for _ in 0..3 {
        let run = timed(|| scanner.scan(&text).len());
        if run.1 < best.1 {
            best = run;
        }
    }
    println!(
        "whole text, 1 thread:      {:8.1} MB/s {} ({} findings)",
        mb / best.1,
        per_cpu(mb, best.2),
        best.0
    );

    line_by_line("default kinds", &scanner, &lines, mb);
    line_by_line("all kinds", &Scanner::with_kinds(&PiiKind::ALL), &lines, mb);
    println!("target: 50 MB/s on 2 cores");
}

/// Scans `lines` with one thread per core and prints wall MB/s and the MB/s the slowest
/// thread's CPU time allows.
fn line_by_line(label: &str, scanner: &Scanner, lines: &[&str], mb: f64) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = lines.len().div_ceil(threads);
    let t = Instant::now();
    let results: Vec<(usize, Option<f64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(per_thread)
            .map(|chunk| {
                let scanner = &scanner;
                s.spawn(move || {
                    let (n, _, cpu) =
                        timed(|| chunk.iter().map(|l| scanner.scan(l).len()).sum::<usize>());
                    (n, cpu)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, None)))
            .collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let findings: usize = results.iter().map(|r| r.0).sum();
    // With every thread on its own core, the wall time is the slowest thread's CPU time.
    let slowest = results
        .iter()
        .map(|r| r.1)
        .try_fold(0.0f64, |m, c| c.map(|c| m.max(c)));
    let parallel_cpu = slowest.map(|s| format!("{:8.1} MB/s if the cores were free", mb / s));
    println!(
        "{label}, line by line, {threads} threads: {:8.1} MB/s wall, {} ({findings} findings)",
        mb / wall,
        parallel_cpu.unwrap_or_else(|| "n/a".into()),
    );
}
