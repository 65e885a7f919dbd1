//! Cost of moderation and of the streaming filter. The term matcher over a 16 MB mixed
//! text, and the stream filter (moderation flag + PII redact) fed 4-byte chunks, as a
//! server feeds it tokens, beside the same work on the whole text at once: the ratio is
//! the price of never letting a match slip across a chunk boundary.
//! Run: `cargo run --release -p hearth-guard --example stream_speed`.

use std::sync::Arc;
use std::time::Instant;

use hearth_guard::moderation::Moderator;
use hearth_guard::stream::{ModerationPolicy, PiiPolicy, StreamFilter};
use hearth_guard::{Anonymizer, Scanner};

const LINES: &[&str] = &[
    "The quarterly report was sent to the whole team on Monday, and nobody replied.",
    "Please contact jane.doe@example.com or call +1-415-555-2671 before 5 pm.",
    "会议记录：今天下午三点在三楼会议室讨论了新产品的发布计划，预计下月上线。",
    "He said he would punch the wall if the build failed again, which it did.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, 1859.",
];

fn text_of(bytes: usize) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(LINES[i % LINES.len()]);
        text.push(' ');
        i += 1;
    }
    text
}

fn main() {
    let scanner = Arc::new(Scanner::new());
    let moderator = Arc::new(Moderator::builtin());

    let big = text_of(16 << 20);
    let t = Instant::now();
    let matches = moderator.matcher().find(&big).len();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "term matcher, whole text: {:8.1} MB/s ({matches} matches, {} entries)",
        big.len() as f64 / 1e6 / secs,
        moderator.matcher().len()
    );

    let text = text_of(1 << 20);
    let mb = text.len() as f64 / 1e6;
    let t = Instant::now();
    let whole_findings = scanner.scan(&text).len();
    let whole_matches = moderator.matcher().find(&text).len();
    let whole = t.elapsed().as_secs_f64();

    let mut filter = StreamFilter::new(scanner.clone(), moderator.clone())
        .with_moderation(ModerationPolicy::Flag)
        .with_pii(PiiPolicy::Redact, Anonymizer::default());
    let bytes = text.as_bytes();
    let t = Instant::now();
    let (mut pii, mut terms, mut chunks) = (0, 0, 0);
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + 4).min(bytes.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        let out = filter.push(&text[start..end]);
        pii += out.pii.len();
        terms += out.terms.len();
        chunks += 1;
        start = end;
    }
    let out = filter.finish();
    pii += out.pii.len();
    terms += out.terms.len();
    let streamed = t.elapsed().as_secs_f64();

    println!(
        "whole text (scan + terms): {:8.1} MB/s ({whole_findings} PII, {whole_matches} term matches)",
        mb / whole
    );
    println!(
        "stream filter, 4-byte chunks: {:5.1} MB/s, {:.2} µs per chunk ({pii} PII, {terms} term matches)",
        mb / streamed,
        streamed * 1e6 / chunks as f64
    );
    println!("stream / whole time: {:.1}x", streamed / whole);

    // The same filter given the whole text in one push (a non-streamed response).
    let mut filter = StreamFilter::new(scanner, moderator)
        .with_moderation(ModerationPolicy::Flag)
        .with_pii(PiiPolicy::Redact, Anonymizer::default());
    let t = Instant::now();
    let mut out = filter.push(&text);
    out.append(filter.finish());
    println!(
        "stream filter, one push: {:8.1} MB/s ({} PII, {} term matches)",
        mb / t.elapsed().as_secs_f64(),
        out.pii.len(),
        out.terms.len()
    );
}
