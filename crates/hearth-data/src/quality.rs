//! Heuristic quality rules in the style of Gopher (Rae et al. 2021, appendix A) and C4:
//! length, mean word length, symbol ratios, bullet and ellipsis lines, alphabetic words,
//! stop words, repeated lines and repeated n-grams, lorem ipsum. Every rule can be turned
//! off, and every rule counts its own failures.
//!
//! Word-based rules assume a language that puts spaces between words; for Chinese or
//! Japanese text turn them off (or set their bounds wide).

use std::collections::{HashMap, HashSet};

/// Bounds of the quality rules; `None` turns a rule off. Defaults are Gopher's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityConfig {
    /// Minimum number of words.
    pub min_words: Option<usize>,
    /// Maximum number of words.
    pub max_words: Option<usize>,
    /// Mean word length (characters) must lie in this range.
    pub mean_word_len: Option<(f64, f64)>,
    /// Maximum ratio of `#` and `...`/`…` to words.
    pub max_symbol_ratio: Option<f64>,
    /// Maximum fraction of lines starting with a bullet.
    pub max_bullet_lines: Option<f64>,
    /// Maximum fraction of lines ending with an ellipsis.
    pub max_ellipsis_lines: Option<f64>,
    /// Minimum fraction of words holding at least one alphabetic character.
    pub min_alpha_words: Option<f64>,
    /// Minimum number of distinct English stop words present.
    pub min_stop_words: Option<usize>,
    /// Maximum fraction of lines that repeat an earlier line.
    pub max_dup_lines: Option<f64>,
    /// Maximum fraction of characters in repeated lines.
    pub max_dup_line_chars: Option<f64>,
    /// For n = 2, 3, 4: maximum fraction of characters covered by the most frequent n-gram.
    pub max_top_ngram_chars: Option<[f64; 3]>,
    /// For n = 5..=10: maximum fraction of characters in n-grams occurring more than once.
    pub max_dup_ngram_chars: Option<[f64; 6]>,
    /// Drop documents containing "lorem ipsum" (C4).
    pub no_lorem_ipsum: bool,
    /// Drop documents containing `{` (C4's code heuristic; off by default).
    pub no_curly_braces: bool,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            min_words: Some(50),
            max_words: Some(100_000),
            mean_word_len: Some((3.0, 10.0)),
            max_symbol_ratio: Some(0.1),
            max_bullet_lines: Some(0.9),
            max_ellipsis_lines: Some(0.3),
            min_alpha_words: Some(0.8),
            min_stop_words: Some(2),
            max_dup_lines: Some(0.3),
            max_dup_line_chars: Some(0.2),
            max_top_ngram_chars: Some([0.20, 0.18, 0.16]),
            max_dup_ngram_chars: Some([0.15, 0.14, 0.13, 0.12, 0.11, 0.10]),
            no_lorem_ipsum: true,
            no_curly_braces: false,
        }
    }
}

/// The rule names, in the order they are checked (and reported).
pub const QUALITY_RULES: [&str; 14] = [
    "min_words",
    "max_words",
    "mean_word_len",
    "symbol_ratio",
    "bullet_lines",
    "ellipsis_lines",
    "alpha_words",
    "stop_words",
    "dup_lines",
    "dup_line_chars",
    "top_ngram_chars",
    "dup_ngram_chars",
    "lorem_ipsum",
    "curly_braces",
];

const STOP_WORDS: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];
const BULLETS: [char; 6] = ['•', '●', '○', '▪', '-', '*'];

impl QualityConfig {
    /// The rules `text` fails (names from [`QUALITY_RULES`]), in checking order. Empty:
    /// the text passes.
    pub fn failures(&self, text: &str) -> Vec<&'static str> {
        let mut fails = Vec::new();
        let words: Vec<&str> = text.split_whitespace().collect();
        let n = words.len();
        if self.min_words.is_some_and(|m| n < m) {
            fails.push("min_words");
        }
        if self.max_words.is_some_and(|m| n > m) {
            fails.push("max_words");
        }
        if let Some((lo, hi)) = self.mean_word_len {
            let mean =
                words.iter().map(|w| w.chars().count()).sum::<usize>() as f64 / n.max(1) as f64;
            if n == 0 || mean < lo || mean > hi {
                fails.push("mean_word_len");
            }
        }
        if let Some(max) = self.max_symbol_ratio {
            let symbols =
                text.matches('#').count() + text.matches("...").count() + text.matches('…').count();
            if symbols as f64 / n.max(1) as f64 > max {
                fails.push("symbol_ratio");
            }
        }
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let n_lines = lines.len().max(1) as f64;
        if let Some(max) = self.max_bullet_lines {
            let bullets = lines.iter().filter(|l| l.starts_with(BULLETS)).count();
            if bullets as f64 / n_lines > max {
                fails.push("bullet_lines");
            }
        }
        if let Some(max) = self.max_ellipsis_lines {
            let ell = lines
                .iter()
                .filter(|l| l.ends_with("...") || l.ends_with('…'))
                .count();
            if ell as f64 / n_lines > max {
                fails.push("ellipsis_lines");
            }
        }
        if let Some(min) = self.min_alpha_words {
            let alpha = words
                .iter()
                .filter(|w| w.chars().any(char::is_alphabetic))
                .count();
            if (alpha as f64) < min * n as f64 || n == 0 {
                fails.push("alpha_words");
            }
        }
        if let Some(min) = self.min_stop_words {
            let present: HashSet<String> = words
                .iter()
                .map(|w| {
                    w.trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase()
                })
                .filter(|w| STOP_WORDS.contains(&w.as_str()))
                .collect();
            if present.len() < min {
                fails.push("stop_words");
            }
        }
        self.repetition(&lines, &words, &mut fails);
        let lower = text.to_lowercase();
        if self.no_lorem_ipsum && lower.contains("lorem ipsum") {
            fails.push("lorem_ipsum");
        }
        if self.no_curly_braces && text.contains('{') {
            fails.push("curly_braces");
        }
        fails
    }

    fn repetition(&self, lines: &[&str], words: &[&str], fails: &mut Vec<&'static str>) {
        if self.max_dup_lines.is_some() || self.max_dup_line_chars.is_some() {
            let mut seen = HashSet::new();
            let (mut dup, mut dup_chars, mut chars) = (0usize, 0usize, 0usize);
            for l in lines {
                chars += l.len();
                if !seen.insert(*l) {
                    dup += 1;
                    dup_chars += l.len();
                }
            }
            if self
                .max_dup_lines
                .is_some_and(|m| dup as f64 / lines.len().max(1) as f64 > m)
            {
                fails.push("dup_lines");
            }
            if self
                .max_dup_line_chars
                .is_some_and(|m| dup_chars as f64 / chars.max(1) as f64 > m)
            {
                fails.push("dup_line_chars");
            }
        }
        let word_chars: usize = words.iter().map(|w| w.len()).sum::<usize>().max(1);
        if let Some(maxes) = self.max_top_ngram_chars {
            let failed = (2..=4).zip(maxes).any(|(n, max)| {
                let mut counts: HashMap<&[&str], usize> = HashMap::new();
                for g in words.windows(n) {
                    *counts.entry(g).or_default() += 1;
                }
                let top = counts
                    .iter()
                    .filter(|(_, &c)| c > 1)
                    .map(|(g, &c)| c * g.iter().map(|w| w.len()).sum::<usize>())
                    .max()
                    .unwrap_or(0);
                top as f64 / word_chars as f64 > max
            });
            if failed {
                fails.push("top_ngram_chars");
            }
        }
        if let Some(maxes) = self.max_dup_ngram_chars {
            let failed = (5..=10)
                .zip(maxes)
                .any(|(n, max)| dup_ngram_chars(words, n) as f64 / word_chars as f64 > max);
            if failed {
                fails.push("dup_ngram_chars");
            }
        }
    }
}

/// Characters of words covered by n-grams that occur more than once (each word counted
/// once, as Gopher does).
fn dup_ngram_chars(words: &[&str], n: usize) -> usize {
    if words.len() < n {
        return 0;
    }
    let mut first: HashMap<&[&str], usize> = HashMap::new();
    let mut covered = vec![false; words.len()];
    for (i, g) in words.windows(n).enumerate() {
        if let Some(&j) = first.get(g) {
            covered[j..j + n].iter_mut().for_each(|c| *c = true);
            covered[i..i + n].iter_mut().for_each(|c| *c = true);
        } else {
            first.insert(g, i);
        }
    }
    words
        .iter()
        .zip(&covered)
        .filter(|(_, &c)| c)
        .map(|(w, _)| w.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "The committee met on Tuesday to discuss the budget for the coming year. \
        Members agreed that the library needs new shelves, and that the roof of the old hall \
        has to be repaired before winter. After a long debate, they voted to raise the fee for \
        the summer festival by a small amount, with the extra money going to the repairs. The \
        chair thanked everyone for their patience and closed the meeting shortly after nine.";

    #[test]
    fn fluent_prose_passes() {
        assert_eq!(QualityConfig::default().failures(GOOD), Vec::<&str>::new());
    }

    #[test]
    fn each_rule_catches_its_own_failure() {
        let q = QualityConfig::default();
        assert!(q.failures("too short to keep").contains(&"min_words"));
        let spam = "buy cheap pills now ".repeat(40);
        let f = q.failures(&spam);
        assert!(
            f.contains(&"top_ngram_chars") && f.contains(&"dup_ngram_chars"),
            "{f:?}"
        );
        let tags = format!("{GOOD} {}", "#tag ".repeat(20));
        assert!(q.failures(&tags).contains(&"symbol_ratio"));
        let list = (0..60)
            .map(|i| format!("- item number {i} of the list"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(q.failures(&list).contains(&"bullet_lines"));
        let numbers = (0..80)
            .map(|i| (i * 7919).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let f = q.failures(&numbers);
        assert!(
            f.contains(&"alpha_words") && f.contains(&"stop_words"),
            "{f:?}"
        );
        let lorem = format!("{GOOD} Lorem ipsum dolor sit amet.");
        assert_eq!(q.failures(&lorem), vec!["lorem_ipsum"]);
        let repeated = format!(
            "{GOOD}\n{}",
            "Click here to subscribe to our newsletter today\n".repeat(5)
        );
        assert!(
            q.failures(&repeated).contains(&"dup_lines"),
            "{:?}",
            q.failures(&repeated)
        );
    }

    #[test]
    fn rules_can_be_turned_off() {
        let q = QualityConfig {
            min_words: None,
            min_stop_words: None,
            ..QualityConfig::default()
        };
        assert!(!q.failures("short words here").contains(&"min_words"));
        let c = QualityConfig {
            no_curly_braces: true,
            ..QualityConfig::default()
        };
        assert_eq!(c.failures(&format!("{GOOD} {{")), vec!["curly_braces"]);
    }
}
