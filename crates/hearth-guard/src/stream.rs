//! The streaming output filter: text chunks of a generated stream in, text released only
//! once no PII finding or term match can still span the point where it is cut.
//!
//! # How text is cut
//!
//! The filter cuts the stream into segments and scans each on its own. A cut may fall
//! after a whitespace character, after a character of an unspaced script (Han, kana,
//! Hangul, Thai) or after CJK punctuation, and only where no PII finding and no term
//! match in the text from the segment start to `lookahead` bytes past the cut spans it;
//! so the filter holds back at most the lookahead (default: the longest term/pattern
//! reach, at least 100 bytes) plus the current word. A segment that grows to
//! `4 × lookahead` bytes without such a point is cut at the next character boundary.
//!
//! Every decision depends only on the text, never on where the chunks happened to end,
//! so any split of a text into chunks gives exactly the same released text, findings and
//! verdict as the whole text in one chunk (a property the tests check).
//!
//! # Cost
//!
//! Each possible cut rescans the text from the segment start to the lookahead, so the
//! filter costs a few microseconds per token-sized chunk (`examples/stream_speed.rs`),
//! far below a model's generation time. For a whole, non-streamed text call
//! [`Scanner::scan`] and [`Moderator::moderate`] directly: that is many times faster.
//!
//! # Policies
//!
//! - Moderation ([`ModerationPolicy`]): `Off`, `Flag` (report categories as their
//!   running score over the whole stream reaches the threshold) or `Block` (withhold the
//!   segment that makes a category flagged and stop the stream).
//! - PII ([`PiiPolicy`]): `Off`, `Flag`, `Redact` (apply the [`Anonymizer`]'s operator
//!   per kind; placeholders are numbered over the whole stream, and `Pseudonymize`,
//!   which needs a vault, masks the value instead) or `Block`.

use std::collections::HashMap;
use std::hash::RandomState;
use std::ops::Range;
use std::sync::Arc;

use crate::finding::{Finding, PiiKind};
use crate::moderation::{Category, Moderator, ScoreAccumulator, TermMatch};
use crate::operators::{Anonymizer, Operator};
use crate::scanner::Scanner;

/// The least lookahead, in bytes: the reach of the longest PII value we expect whole.
pub const MIN_LOOKAHEAD: usize = 100;

/// What to do with content categories in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModerationPolicy {
    /// Do not look.
    #[default]
    Off,
    /// Report flagged categories, release everything.
    Flag,
    /// Stop the stream before the text that flags a category.
    Block,
}

/// What to do with personal data in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PiiPolicy {
    /// Do not look.
    #[default]
    Off,
    /// Report findings, release the text unchanged.
    Flag,
    /// Release the text with findings replaced by the anonymizer.
    Redact,
    /// Stop the stream before the first finding.
    Block,
}

/// Why the stream was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    /// A content category reached its threshold.
    Category(Category),
    /// Personal data of this kind was about to be released.
    Pii(PiiKind),
}

/// What one call of [`StreamFilter::push`] or [`StreamFilter::finish`] gives back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamOutput {
    /// Text to send on (redacted under [`PiiPolicy::Redact`]); may be empty.
    pub text: String,
    /// PII found in the released or withheld text, spans in bytes of the original stream.
    pub pii: Vec<Finding>,
    /// Term matches, spans in bytes of the original stream.
    pub terms: Vec<TermMatch>,
    /// Categories that became flagged in this step.
    pub flagged: Vec<Category>,
    /// Set when the stream was stopped in this step; later calls release nothing.
    pub blocked: Option<BlockReason>,
}

impl StreamOutput {
    /// Appends `other` (a later step) to this output.
    pub fn append(&mut self, other: StreamOutput) {
        self.text.push_str(&other.text);
        self.pii.extend(other.pii);
        self.terms.extend(other.terms);
        self.flagged.extend(other.flagged);
        self.blocked = self.blocked.or(other.blocked);
    }
}

/// Filters one generated stream; create one per response.
pub struct StreamFilter {
    scanner: Arc<Scanner>,
    moderator: Arc<Moderator>,
    anonymizer: Anonymizer,
    moderation: ModerationPolicy,
    pii: PiiPolicy,
    lookahead: usize,
    /// Released text not yet dropped, then the unreleased text from `buf[head]`, which
    /// is byte `offset` of the stream. Dropping released text only now and then keeps a
    /// large push linear.
    buf: String,
    head: usize,
    offset: usize,
    scores: ScoreAccumulator,
    flagged: Vec<Category>,
    stopped: bool,
    /// Placeholder numbers by kind and value hash, and the last number per kind.
    placeholders: HashMap<(PiiKind, u64), usize>,
    placeholder_counts: HashMap<PiiKind, usize>,
    hash_state: RandomState,
}

impl std::fmt::Debug for StreamFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamFilter")
            .field("moderation", &self.moderation)
            .field("pii", &self.pii)
            .field("lookahead", &self.lookahead)
            .field("held_bytes", &self.held())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl StreamFilter {
    /// A filter with both policies off (set them with [`with_moderation`](Self::with_moderation)
    /// and [`with_pii`](Self::with_pii)); the lookahead is the moderator's longest reach,
    /// at least [`MIN_LOOKAHEAD`].
    pub fn new(scanner: Arc<Scanner>, moderator: Arc<Moderator>) -> Self {
        let lookahead = moderator.matcher().max_reach().max(MIN_LOOKAHEAD);
        StreamFilter {
            scanner,
            moderator,
            anonymizer: Anonymizer::default(),
            moderation: ModerationPolicy::Off,
            pii: PiiPolicy::Off,
            lookahead,
            buf: String::new(),
            head: 0,
            offset: 0,
            scores: ScoreAccumulator::default(),
            flagged: Vec::new(),
            stopped: false,
            placeholders: HashMap::new(),
            placeholder_counts: HashMap::new(),
            hash_state: RandomState::new(),
        }
    }

    /// Sets the moderation policy.
    pub fn with_moderation(mut self, policy: ModerationPolicy) -> Self {
        self.moderation = policy;
        self
    }

    /// Sets the PII policy and, for [`PiiPolicy::Redact`], the anonymizer.
    pub fn with_pii(mut self, policy: PiiPolicy, anonymizer: Anonymizer) -> Self {
        self.pii = policy;
        self.anonymizer = anonymizer;
        self
    }

    /// Sets the lookahead (bytes held back past a cut; raised to the moderator's
    /// longest reach if lower, so that no term can slip through).
    pub fn with_lookahead(mut self, lookahead: usize) -> Self {
        self.lookahead = lookahead.max(self.moderator.matcher().max_reach()).max(1);
        self
    }

    /// The lookahead in use, in bytes.
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// How many bytes are held back now.
    pub fn held(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Takes the next chunk of the stream and releases what is safe to release.
    pub fn push(&mut self, chunk: &str) -> StreamOutput {
        if self.stopped {
            return StreamOutput::default();
        }
        self.buf.push_str(chunk);
        self.drain(false)
    }

    /// Ends the stream: releases (or withholds) everything still held.
    pub fn finish(&mut self) -> StreamOutput {
        if self.stopped {
            return StreamOutput::default();
        }
        let out = self.drain(true);
        self.stopped = true;
        out
    }

    fn drain(&mut self, at_end: bool) -> StreamOutput {
        let mut out = StreamOutput::default();
        while !self.stopped {
            let Some(cut) = self.next_cut(at_end) else {
                break;
            };
            let step = self.release(cut);
            out.append(step);
        }
        out
    }

    fn watching(&self) -> bool {
        self.moderation != ModerationPolicy::Off || self.pii != PiiPolicy::Off
    }

    /// Where the segment at the start of `buf` ends, once that is decided.
    fn next_cut(&self, at_end: bool) -> Option<usize> {
        let buf = &self.buf[self.head..];
        if buf.is_empty() {
            return None;
        }
        if !self.watching() {
            return Some(buf.len());
        }
        let force_at = 4 * self.lookahead;
        for (i, c) in buf.char_indices() {
            let p = i + c.len_utf8();
            if p == buf.len() && at_end {
                return Some(p);
            }
            if p >= force_at {
                return Some(p);
            }
            if !is_cut_char(c) {
                continue;
            }
            let region_end = p + self.lookahead;
            if region_end > buf.len() && !at_end {
                return None;
            }
            let region = &buf[..floor_char_boundary(buf, region_end.min(buf.len()))];
            if !self.spanned(region, p) {
                return Some(p);
            }
        }
        at_end.then_some(buf.len())
    }

    /// Whether any finding or term match in `region` starts before `p` and ends after it.
    fn spanned(&self, region: &str, p: usize) -> bool {
        let spans = |r: &Range<usize>| r.start < p && r.end > p;
        (self.pii != PiiPolicy::Off && self.scanner.scan(region).iter().any(|f| spans(&f.span)))
            || (self.moderation != ModerationPolicy::Off
                && self
                    .moderator
                    .matcher()
                    .find(region)
                    .iter()
                    .any(|m| spans(&m.span)))
    }

    /// Scans the next `cut` unreleased bytes, applies the policies, and marks them released.
    fn release(&mut self, cut: usize) -> StreamOutput {
        let segment = self.buf[self.head..self.head + cut].to_string();
        self.head += cut;
        if self.head >= 4096 && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let base = self.offset;
        self.offset += cut;
        let mut out = StreamOutput::default();
        let shift = |r: &Range<usize>| r.start + base..r.end + base;

        let findings = if self.pii == PiiPolicy::Off {
            Vec::new()
        } else {
            self.scanner.scan(&segment)
        };
        if self.moderation != ModerationPolicy::Off {
            let matches = self.moderator.matcher().find(&segment);
            for m in &matches {
                self.scores.add(m);
            }
            let flags = self.moderator.thresholds().flags(&self.scores.scores());
            for c in flags.flagged() {
                if !self.flagged.contains(&c) {
                    self.flagged.push(c);
                    out.flagged.push(c);
                }
            }
            out.terms = matches
                .into_iter()
                .map(|m| TermMatch {
                    span: shift(&m.span),
                    ..m
                })
                .collect();
        }
        out.pii = findings
            .iter()
            .map(|f| Finding::new(f.kind, shift(&f.span), f.score))
            .collect();

        out.blocked = match (out.flagged.first(), findings.first()) {
            (Some(&c), _) if self.moderation == ModerationPolicy::Block => {
                Some(BlockReason::Category(c))
            }
            (_, Some(f)) if self.pii == PiiPolicy::Block => Some(BlockReason::Pii(f.kind)),
            _ => None,
        };
        if out.blocked.is_some() {
            self.stopped = true;
            self.buf.clear();
            self.head = 0;
            return out;
        }
        out.text = if self.pii == PiiPolicy::Redact && !findings.is_empty() {
            self.redact(&segment, &findings)
        } else {
            segment
        };
        out
    }
}

impl StreamFilter {
    /// `segment` with `findings` replaced: placeholders numbered over the whole stream
    /// (`<PHONE_1>`, `<PHONE_2>`, the same number for the same value), other operators
    /// as the anonymizer applies them. An operator that fails (`Pseudonymize` has no
    /// vault here) masks the value instead, so nothing leaks.
    fn redact(&mut self, segment: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(segment.len());
        let mut copied = 0;
        for f in findings {
            let Some(value) = segment.get(f.span.clone()) else {
                continue;
            };
            out.push_str(&segment[copied..f.span.start]);
            copied = f.span.end;
            if *self.anonymizer.operator(f.kind) == Operator::Placeholder {
                let n = self.placeholder_number(f.kind, value);
                out.push_str(&format!("<{}_{n}>", f.kind.label()));
                continue;
            }
            let alone = [Finding::new(f.kind, 0..value.len(), f.score)];
            match self.anonymizer.anonymize(value, &alone, None) {
                Ok(replaced) => out.push_str(&replaced),
                Err(_) => out.extend(std::iter::repeat_n('*', value.chars().count())),
            }
        }
        out.push_str(&segment[copied..]);
        out
    }

    /// The placeholder number of `value` in this stream. Values are remembered by a
    /// hash, so the filter holds no raw PII once a segment is released.
    fn placeholder_number(&mut self, kind: PiiKind, value: &str) -> usize {
        use std::hash::BuildHasher;
        let key = (kind, self.hash_state.hash_one(value));
        let next = self.placeholder_counts.entry(kind).or_insert(0);
        *self.placeholders.entry(key).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
}

/// Characters after which the filter may cut.
fn is_cut_char(c: char) -> bool {
    c.is_whitespace()
        || crate::moderation::is_unspaced_script(c)
        || matches!(
            c,
            '，' | '。' | '！' | '？' | '；' | '：' | '、' | '）' | '」' | '』'
        )
}

/// The largest character boundary of `s` at or below `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
