//! The streaming filter gives the same released text, findings and verdict for any
//! split of a text into chunks, and lets no PII value or term slip across a chunk
//! boundary.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, OnceLock};

use hearth_guard::moderation::{Category, Moderator, TermList};
use hearth_guard::stream::{BlockReason, ModerationPolicy, PiiPolicy, StreamFilter, StreamOutput};
use hearth_guard::{Anonymizer, Operator, PiiKind, Scanner};

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "the ",
    "report ",
    "was ",
    "sent",
    ". ",
    ", ",
    "\n",
    " ",
    "  ",
    "skill ",
    "class ",
    "a@b.com",
    "jane.doe@example.org ",
    "+1-415-555-2671",
    "13812345678",
    "4111 1111 1111 1111",
    "11010519491231002X",
    "10.0.0.1",
    "DE89 3704 0044 0532 0130 00",
    "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI",
    "kill ",
    "yourself",
    "I will kill you",
    "punch ",
    "gore",
    "我想自杀",
    "今天天气很好，",
    "电话",
    "。",
    "idiot",
    "porn",
    "123",
    "-",
    "x",
];

fn random_text(rng: &mut Rng) -> String {
    let n = 1 + rng.below(40);
    (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

fn random_split<'t>(rng: &mut Rng, text: &'t str) -> Vec<&'t str> {
    let mut cuts: Vec<usize> = (0..rng.below(12))
        .map(|_| rng.below(text.len() + 1))
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    cuts.push(0);
    cuts.push(text.len());
    cuts.sort_unstable();
    cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

/// The scanner and moderator, compiled once and shared as a server would share them.
fn shared() -> (Arc<Scanner>, Arc<Moderator>) {
    static SHARED: OnceLock<(Arc<Scanner>, Arc<Moderator>)> = OnceLock::new();
    SHARED
        .get_or_init(|| (Arc::new(Scanner::new()), Arc::new(Moderator::builtin())))
        .clone()
}

fn filter(moderation: ModerationPolicy, pii: PiiPolicy, lookahead: usize) -> StreamFilter {
    let (scanner, moderator) = shared();
    StreamFilter::new(scanner, moderator)
        .with_moderation(moderation)
        .with_pii(pii, Anonymizer::default())
        .with_lookahead(lookahead)
}

fn run(mut f: StreamFilter, chunks: &[&str]) -> StreamOutput {
    let mut out = StreamOutput::default();
    for c in chunks {
        out.append(f.push(c));
    }
    out.append(f.finish());
    out
}

#[test]
fn any_split_gives_the_same_output_as_the_whole_text() {
    let policies = [
        (ModerationPolicy::Flag, PiiPolicy::Redact),
        (ModerationPolicy::Block, PiiPolicy::Flag),
        (ModerationPolicy::Off, PiiPolicy::Block),
        (ModerationPolicy::Flag, PiiPolicy::Off),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..400 {
        let text = random_text(&mut rng);
        let (m, p) = policies[case % policies.len()];
        // A short lookahead exercises the forced cuts too (it is raised to the
        // longest term reach, so terms stay whole).
        let lookahead = if case % 3 == 0 { 8 } else { 100 };
        let whole = run(filter(m, p, lookahead), &[&text]);
        for _ in 0..4 {
            let chunks = random_split(&mut rng, &text);
            let split = run(filter(m, p, lookahead), &chunks);
            assert_eq!(
                split, whole,
                "case {case} {m:?}/{p:?}: {text:?} split as {chunks:?}"
            );
        }
    }
}

#[test]
fn nothing_slips_across_chunk_boundaries() {
    let text = "Call +1-415-555-2671 or pay with 4111 1111 1111 1111 now. I will kill you.\n\
                我想自杀，邮箱 a@b.com 。";
    let scanner = Scanner::new();
    let moderator = Moderator::builtin();
    let want_pii: Vec<_> = scanner.scan(text);
    let want_terms = moderator.matcher().find(text);
    // Every split into two chunks, and byte-by-byte.
    let mut splits: Vec<Vec<&str>> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .map(|i| vec![&text[..i], &text[i..]])
        .collect();
    splits.push(
        text.char_indices()
            .map(|(i, c)| &text[i..i + c.len_utf8()])
            .collect(),
    );
    for chunks in splits {
        let out = run(
            filter(ModerationPolicy::Flag, PiiPolicy::Redact, 100),
            &chunks,
        );
        assert_eq!(out.pii, want_pii, "{chunks:?}");
        assert_eq!(out.terms, want_terms, "{chunks:?}");
        assert!(
            !out.text.contains("4111") && !out.text.contains("a@b.com"),
            "{}",
            out.text
        );
        assert!(out.text.contains("<CREDIT_CARD_1>") && out.text.contains("<EMAIL_1>"));
        assert!(out.flagged.contains(&Category::SelfHarmIntent));
        assert!(out.flagged.contains(&Category::HarassmentThreatening));
    }
}

#[test]
fn block_stops_before_the_offending_text() {
    let mut f = filter(ModerationPolicy::Block, PiiPolicy::Off, 100);
    let mut out = StreamOutput::default();
    for word in
        "Sure, here is how. I will kill you slowly and then more text follows".split_inclusive(' ')
    {
        out.append(f.push(word));
    }
    out.append(f.finish());
    assert_eq!(
        out.blocked,
        Some(BlockReason::Category(Category::Harassment))
    );
    assert!(out.text.starts_with("Sure, here is how."), "{}", out.text);
    assert!(!out.text.contains("kill"), "{}", out.text);
    assert!(f.push("more").text.is_empty());

    let out = run(
        filter(ModerationPolicy::Off, PiiPolicy::Block, 100),
        &["my key: sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI ok"],
    );
    assert_eq!(out.blocked, Some(BlockReason::Pii(PiiKind::Secret)));
    assert!(!out.text.contains("sk-proj"));
}

#[test]
fn placeholders_are_numbered_over_the_whole_stream() {
    let text = "a@b.com then c@d.com then a@b.com again, card 4111 1111 1111 1111";
    let chunks: Vec<&str> = text.split_inclusive(' ').collect();
    let out = run(
        filter(ModerationPolicy::Off, PiiPolicy::Redact, 100),
        &chunks,
    );
    assert_eq!(
        out.text,
        "<EMAIL_1> then <EMAIL_2> then <EMAIL_1> again, card <CREDIT_CARD_1>"
    );
    let masked = filter(ModerationPolicy::Off, PiiPolicy::Redact, 100).with_pii(
        PiiPolicy::Redact,
        Anonymizer::new(Operator::Mask {
            ch: '#',
            keep_length: true,
        })
        .with(PiiKind::CreditCard, Operator::Pseudonymize),
    );
    let out = run(masked, &chunks);
    assert_eq!(
        out.text,
        "####### then ####### then ####### again, card *******************"
    );
}

#[test]
fn off_releases_at_once_and_lookahead_bounds_the_hold() {
    let mut f = filter(ModerationPolicy::Off, PiiPolicy::Off, 100);
    assert_eq!(f.push("abc def").text, "abc def");
    let mut f = filter(ModerationPolicy::Flag, PiiPolicy::Redact, 100);
    let lookahead = f.lookahead();
    assert!(lookahead >= 100);
    let mut released = 0;
    for _ in 0..200 {
        released += f.push("word ").text.len();
        assert!(f.held() <= lookahead + 5, "held {}", f.held());
    }
    assert!(released >= 1000 - lookahead - 5);
}

#[test]
fn custom_lists_raise_the_lookahead() {
    let long_term =
        "a very long innocuous phrase that someone decided to list as a term for testing the reach";
    let list = TermList::parse("t", &format!("[hate]\n0.9 {long_term}\n")).unwrap();
    let moderator = Arc::new(Moderator::new(&list).unwrap());
    let f = StreamFilter::new(Arc::new(Scanner::new()), moderator.clone())
        .with_moderation(ModerationPolicy::Block)
        .with_lookahead(1);
    let text = format!("x {long_term} y");
    let chunks: Vec<&str> = text.split_inclusive(' ').collect();
    let out = run(f, &chunks);
    assert_eq!(out.blocked, Some(BlockReason::Category(Category::Hate)));
    assert_eq!(out.text, "x ");
}
