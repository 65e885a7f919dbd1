//! The term matcher (one aho-corasick pass plus the `re:` patterns), the score
//! accumulator, and the [`Moderator`] that turns matches into a [`Moderation`].

use std::collections::HashSet;
use std::ops::Range;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet};

use crate::error::{Error, Result};
use crate::moderation::category::{
    Category, CategoryFlags, CategoryScores, Thresholds, CATEGORY_COUNT,
};
use crate::moderation::term_list::{compile_pattern, TermKind, TermList, MAX_PATTERN_BYTES};

/// One entry of a term list matched in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct TermMatch {
    /// The entry's index in the list the matcher was built from.
    pub entry: usize,
    /// The entry's category.
    pub category: Category,
    /// The entry's weight.
    pub weight: f32,
    /// Byte span of the match in the text (on character boundaries).
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy)]
struct LiteralInfo {
    entry: usize,
    check_left: bool,
    check_right: bool,
}

/// Finds the entries of a [`TermList`] in texts: every literal term in one
/// aho-corasick pass (overlapping, so that a failed word-boundary check on one term
/// never hides another), then each pattern.
#[derive(Debug, Clone)]
pub struct TermMatcher {
    entries: Vec<(Category, f32)>,
    ac: Option<AhoCorasick>,
    /// For each aho-corasick pattern id, the entries with that (lower-cased) text.
    literals: Vec<Vec<LiteralInfo>>,
    patterns: Vec<(usize, Regex)>,
    /// Every pattern at once: which of them match a text at all (one pass).
    any_pattern: Option<RegexSet>,
    max_reach: usize,
}

/// Characters of scripts written without spaces between words, where a term matches as
/// a plain substring.
pub(crate) fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F      // Thai
        | 0x1100..=0x11FF    // Hangul Jamo
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // CJK Extensions B–F and supplements
}

/// A letter or digit of a spaced script: what glues a Latin-script term to its neighbour.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_unspaced_script(c)
}

impl TermMatcher {
    /// Compiles `list`. Fails only on a pattern that no longer compiles (lists from
    /// [`TermList::parse`] have been checked) or on a list too large for aho-corasick.
    pub fn new(list: &TermList) -> Result<Self> {
        let mut entries = Vec::with_capacity(list.entries.len());
        let mut texts: Vec<String> = Vec::new();
        let mut literals: Vec<Vec<LiteralInfo>> = Vec::new();
        let mut by_text = std::collections::HashMap::new();
        let mut patterns = Vec::new();
        let mut max_reach = 0;
        for (i, e) in list.entries.iter().enumerate() {
            entries.push((e.category, e.weight));
            match &e.kind {
                TermKind::Literal { text, prefix } => {
                    let key = text.to_ascii_lowercase();
                    max_reach = max_reach.max(key.len());
                    let info = LiteralInfo {
                        entry: i,
                        check_left: text.chars().next().is_some_and(is_word_char),
                        check_right: !prefix && text.chars().next_back().is_some_and(is_word_char),
                    };
                    let id = *by_text.entry(key.clone()).or_insert_with(|| {
                        texts.push(key);
                        literals.push(Vec::new());
                        literals.len() - 1
                    });
                    literals[id].push(info);
                }
                TermKind::Pattern(src) => {
                    let re = compile_pattern(src).map_err(|e| Error::TermList {
                        source_name: "compiled list".into(),
                        line: i + 1,
                        problem: format!("bad pattern: {e}"),
                    })?;
                    max_reach = max_reach.max(MAX_PATTERN_BYTES);
                    patterns.push((i, re));
                }
            }
        }
        let any_pattern = if patterns.is_empty() {
            None
        } else {
            let sources = patterns.iter().map(|(_, re): &(usize, Regex)| re.as_str());
            Some(
                regex::RegexSetBuilder::new(sources)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| Error::TermList {
                        source_name: "compiled list".into(),
                        line: 0,
                        problem: format!("building the pattern set: {e}"),
                    })?,
            )
        };
        let ac = if texts.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&texts)
                    .map_err(|e| Error::TermList {
                        source_name: "compiled list".into(),
                        line: 0,
                        problem: format!("building the term automaton: {e}"),
                    })?,
            )
        };
        Ok(TermMatcher {
            entries,
            ac,
            literals,
            patterns,
            any_pattern,
            max_reach,
        })
    }

    /// The longest span, in bytes, that any match can cover: a literal term's length,
    /// or [`MAX_PATTERN_BYTES`] when the list has patterns. Prefix terms count only
    /// their stem, since their match ends where the stem does.
    pub fn max_reach(&self) -> usize {
        self.max_reach
    }

    /// How many entries the matcher was built from.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the matcher has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every match in `text`, sorted by start, then end, then entry.
    pub fn find(&self, text: &str) -> Vec<TermMatch> {
        let mut out = Vec::new();
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(text) {
                let (start, end) = (m.start(), m.end());
                // ASCII case folding keeps spans on character boundaries; a match
                // that ends inside a character cannot happen for valid UTF-8 terms.
                if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                    continue;
                }
                let left_glued = text[..start].chars().next_back().is_some_and(is_word_char);
                let right_glued = text[end..].chars().next().is_some_and(is_word_char);
                for info in &self.literals[m.pattern().as_usize()] {
                    if (info.check_left && left_glued) || (info.check_right && right_glued) {
                        continue;
                    }
                    let (category, weight) = self.entries[info.entry];
                    out.push(TermMatch {
                        entry: info.entry,
                        category,
                        weight,
                        span: start..end,
                    });
                }
            }
        }
        let matching = self.any_pattern.as_ref().map(|set| set.matches(text));
        for (i, (entry, re)) in self.patterns.iter().enumerate() {
            if !matching.as_ref().is_some_and(|m| m.matched(i)) {
                continue;
            }
            let (category, weight) = self.entries[*entry];
            for m in re.find_iter(text) {
                if m.is_empty() || m.len() > MAX_PATTERN_BYTES {
                    continue;
                }
                out.push(TermMatch {
                    entry: *entry,
                    category,
                    weight,
                    span: m.range(),
                });
            }
        }
        out.sort_by_key(|m| (m.span.start, m.span.end, m.entry));
        out
    }
}

/// Turns matches into per-category scores: `1 - Π(1 - w)` over the distinct entries
/// matched so far, each counting for its category and that category's parent. Feeding
/// the matches of a text in any number of pieces gives the same scores.
#[derive(Debug, Clone)]
pub struct ScoreAccumulator {
    seen: HashSet<usize>,
    residual: [f32; CATEGORY_COUNT],
}

impl Default for ScoreAccumulator {
    fn default() -> Self {
        ScoreAccumulator {
            seen: HashSet::new(),
            residual: [1.0; CATEGORY_COUNT],
        }
    }
}

impl ScoreAccumulator {
    /// Counts `m` (once per entry).
    pub fn add(&mut self, m: &TermMatch) {
        if !self.seen.insert(m.entry) {
            return;
        }
        self.residual[m.category.index()] *= 1.0 - m.weight;
        if let Some(p) = m.category.parent() {
            self.residual[p.index()] *= 1.0 - m.weight;
        }
    }

    /// The scores so far.
    pub fn scores(&self) -> CategoryScores {
        let mut s = CategoryScores::default();
        for c in Category::ALL {
            s.set(c, 1.0 - self.residual[c.index()]);
        }
        s
    }
}

/// The outcome of moderating one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Moderation {
    /// Whether any category is flagged.
    pub flagged: bool,
    /// Which categories reached their threshold.
    pub categories: CategoryFlags,
    /// The score of every category, in `0..=1`.
    pub scores: CategoryScores,
    /// The term-list matches behind the scores (empty for judge-only scores).
    pub matches: Vec<TermMatch>,
}

/// Term-list moderation: a [`TermMatcher`] and per-category [`Thresholds`].
///
/// ```
/// use hearth_guard::moderation::{Category, Moderator};
/// let m = Moderator::builtin();
/// let verdict = m.moderate("I am going to kill myself tonight");
/// assert!(verdict.categories.get(Category::SelfHarmIntent));
/// assert!(!m.moderate("The weather is lovely today").flagged);
/// ```
#[derive(Debug, Clone)]
pub struct Moderator {
    matcher: TermMatcher,
    thresholds: Thresholds,
}

impl Moderator {
    /// The built-in English and Chinese lists, threshold 0.5.
    pub fn builtin() -> Self {
        // The built-in lists compile (tested); an empty matcher is the fallback.
        let matcher = TermMatcher::new(&TermList::builtin())
            .or_else(|_| TermMatcher::new(&TermList::default()));
        Moderator {
            matcher: matcher.unwrap_or(TermMatcher {
                entries: Vec::new(),
                ac: None,
                literals: Vec::new(),
                patterns: Vec::new(),
                any_pattern: None,
                max_reach: 0,
            }),
            thresholds: Thresholds::default(),
        }
    }

    /// A moderator over `list`, threshold 0.5.
    pub fn new(list: &TermList) -> Result<Self> {
        Ok(Moderator {
            matcher: TermMatcher::new(list)?,
            thresholds: Thresholds::default(),
        })
    }

    /// The same moderator with other thresholds.
    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// The compiled term matcher.
    pub fn matcher(&self) -> &TermMatcher {
        &self.matcher
    }

    /// Scores and flags `text` by the term lists.
    pub fn moderate(&self, text: &str) -> Moderation {
        let matches = self.matcher.find(text);
        let mut acc = ScoreAccumulator::default();
        for m in &matches {
            acc.add(m);
        }
        self.verdict(acc.scores(), matches)
    }

    /// Flags `scores` by this moderator's thresholds (for scores merged with a judge's).
    pub fn verdict(&self, scores: CategoryScores, matches: Vec<TermMatch>) -> Moderation {
        let categories = self.thresholds.flags(&scores);
        Moderation {
            flagged: categories.any(),
            categories,
            scores,
            matches,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(text: &str) -> TermMatcher {
        TermMatcher::new(&TermList::parse("t", text).unwrap()).unwrap()
    }

    fn found<'t>(m: &TermMatcher, text: &'t str) -> Vec<&'t str> {
        m.find(text).iter().map(|x| &text[x.span.clone()]).collect()
    }

    #[test]
    fn latin_terms_respect_word_boundaries() {
        let m = matcher("[harassment]\n0.5 ass\n0.5 dumb*\n");
        assert_eq!(found(&m, "class ASS, bass, ass."), ["ASS", "ass"]);
        assert_eq!(found(&m, "dumbest undumb dumb"), ["dumb", "dumb"]);
        assert_eq!(found(&m, "éass assé"), Vec::<&str>::new());
        assert_eq!(found(&m, "你ass好"), ["ass"]);
    }

    #[test]
    fn cjk_terms_match_as_substrings_and_overlap() {
        let m = matcher("[self-harm/intent]\n0.9 想自杀\n[self-harm]\n0.5 自杀\n");
        let got = m.find("我想自杀了");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].span, 3..12);
        assert_eq!(got[1].span, 6..12);
    }

    #[test]
    fn failed_boundary_does_not_hide_an_overlapping_term() {
        let m = matcher("[violence]\n0.5 kill\n0.5 ill you\n");
        assert_eq!(found(&m, "skill you"), Vec::<&str>::new());
        assert_eq!(found(&m, "I will kill you"), ["kill"]);
        let m = matcher("[violence]\n0.5 kill\n0.5 kill you\n");
        assert_eq!(found(&m, "I will kill you"), ["kill", "kill you"]);
    }

    #[test]
    fn patterns_match_case_insensitively_within_reach() {
        let m = matcher("[harassment/threatening]\n0.9 re:i(?:'ll| will) hurt you\n");
        assert_eq!(found(&m, "I WILL hurt you"), ["I WILL hurt you"]);
        assert_eq!(m.max_reach(), MAX_PATTERN_BYTES);
        let m = matcher("[hate]\n0.9 re:a[ -z]*b\n");
        let long = format!("a{}b", " ".repeat(MAX_PATTERN_BYTES));
        assert!(m.find(&long).is_empty());
    }

    #[test]
    fn scores_are_noisy_or_over_distinct_entries_and_reach_parents() {
        let list = "[violence]\n0.3 punch\n0.3 kick\n[violence/graphic]\n0.6 gore\n";
        let moderator = Moderator::new(&TermList::parse("t", list).unwrap()).unwrap();
        let one = moderator.moderate("punch punch punch");
        assert!((one.scores.get(Category::Violence) - 0.3).abs() < 1e-6);
        assert!(!one.flagged);
        let two = moderator.moderate("punch and kick");
        assert!((two.scores.get(Category::Violence) - 0.51).abs() < 1e-6);
        assert!(two.categories.get(Category::Violence));
        let g = moderator.moderate("gore");
        assert!(g.categories.get(Category::ViolenceGraphic));
        assert!(g.categories.get(Category::Violence));
        assert_eq!(g.scores.get(Category::Hate), 0.0);
    }
}
