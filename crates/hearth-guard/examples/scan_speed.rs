//! Throughput of the full recognizer set, in MB/s, on a synthetic mixed text (mostly
//! prose with PII sprinkled in, English and Chinese), single thread and one scanner per
//! core over lines. Run: `cargo run --release -p hearth-guard --example scan_speed`.

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
];

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

    let t = Instant::now();
    let findings = scanner.scan(&text).len();
    let single = mb / t.elapsed().as_secs_f64();

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lines: Vec<&str> = text.lines().collect();
    let t = Instant::now();
    let per_thread = lines.len().div_ceil(threads);
    let parallel_findings: usize = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(per_thread)
            .map(|chunk| {
                let scanner = &scanner;
                s.spawn(move || chunk.iter().map(|l| scanner.scan(l).len()).sum::<usize>())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let parallel = mb / t.elapsed().as_secs_f64();

    println!("text: {mb:.1} MB, {} lines", lines.len());
    for kind in PiiKind::ALL {
        let only = Scanner::new().only(&[kind]);
        let t = Instant::now();
        let n = only.scan(&text).len();
        println!(
            "  {:<16} {:8.1} MB/s ({n} findings)",
            kind.label(),
            mb / t.elapsed().as_secs_f64()
        );
    }
    println!("whole text, 1 thread:        {single:8.1} MB/s ({findings} findings)");
    println!(
        "line by line, {threads} threads:    {parallel:8.1} MB/s ({parallel_findings} findings)"
    );
}
