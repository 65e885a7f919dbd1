//! Term lists: the file format that feeds the term matcher, and its parser.
//!
//! # Format (`.terms`, UTF-8, one entry per line)
//!
//! ```text
//! # A comment: '#' at the start of a line (after optional spaces).
//! [violence/graphic]           # a section: OpenAI's category name for the entries below
//! 0.7  disembowel*             # weight in (0, 1], whitespace, then the term
//! 0.4  bloodbath
//! 0.9  re:\bi(?:'ll| will) gut you\b     # `re:` then a regular expression
//! [self-harm/intent]
//! 0.8  我想自杀
//! ```
//!
//! - **Terms** match case-insensitively (ASCII letters) and literally otherwise; words are
//!   separated by single spaces. Where a term begins or ends with a letter or digit of a
//!   spaced script (Latin, Cyrillic, Greek, ...) the match must not touch another letter or
//!   digit there (`ass` does not match inside `class`). Where it begins or ends with a
//!   character of an unspaced script (Han, kana, Hangul, Thai) it matches anywhere.
//!   A trailing `*` makes the term a prefix (`disembowel*` matches `disemboweled`).
//! - **Patterns** (`re:`) use Rust `regex` syntax, matched case-insensitively, with `\b`
//!   and `\B` meaning ASCII word boundaries (write `(?u:\b)` for Unicode ones); a match
//!   longer than [`MAX_PATTERN_BYTES`] is ignored, so that the stream filter knows how far
//!   back a match can reach.
//! - **Weights**: a category's score is `1 - Π(1 - w)` over the *distinct* entries of the
//!   category and of its sub-categories that matched (a sub-category also counts for its
//!   parent). With the default threshold 0.5 one entry of weight ≥ 0.5 flags a category;
//!   weaker entries flag only together.
//! - Entries before the first section, unknown categories, weights outside (0, 1], empty
//!   terms and bad patterns are errors naming the source and line.

use crate::error::{Error, Result};
use crate::moderation::category::Category;

/// The longest match, in bytes, that a `re:` pattern may report.
pub const MAX_PATTERN_BYTES: usize = 160;

/// What an entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermKind {
    /// A literal term; `prefix` when the source line ended with `*` (not part of `text`).
    Literal {
        /// The term without the trailing `*`.
        text: String,
        /// Match at a word start only, any ending.
        prefix: bool,
    },
    /// A regular expression (its source text).
    Pattern(String),
}

/// One entry of a term list.
#[derive(Debug, Clone, PartialEq)]
pub struct TermEntry {
    /// The category the entry is evidence for.
    pub category: Category,
    /// How strong that evidence is, in (0, 1].
    pub weight: f32,
    /// What the entry matches.
    pub kind: TermKind,
}

/// A parsed list of entries, with the name of its source for error messages and
/// attribution.
#[derive(Debug, Clone, Default)]
pub struct TermList {
    /// The entries in file order.
    pub entries: Vec<TermEntry>,
}

/// The English starter list shipped with this crate (written for hearth).
pub const BUILTIN_EN: &str = include_str!("../../lists/en.terms");
/// The Chinese starter list shipped with this crate (written for hearth).
pub const BUILTIN_ZH: &str = include_str!("../../lists/zh.terms");

impl TermList {
    /// The built-in English and Chinese starter lists.
    pub fn builtin() -> Self {
        let mut list = TermList::default();
        // The built-in lists are tested to parse (see the tests below); an error here
        // would be a bug in this crate, and an empty list is the safe fallback.
        for (name, text) in [("en.terms", BUILTIN_EN), ("zh.terms", BUILTIN_ZH)] {
            match TermList::parse(name, text) {
                Ok(l) => list.extend(l),
                Err(e) => debug_assert!(false, "built-in list {name}: {e}"),
            }
        }
        list
    }

    /// Parses the `.terms` format; `source` names the text in errors.
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let mut entries = Vec::new();
        let mut category = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |problem: String| Error::TermList {
                source_name: source.to_string(),
                line: line_no,
                problem,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .split_once(']')
                    .map(|(n, _)| n.trim())
                    .ok_or_else(|| err("section header without `]`".into()))?;
                category = Some(Category::from_name(name).ok_or_else(|| {
                    err(format!("unknown category `{name}` (use OpenAI's names)"))
                })?);
                continue;
            }
            let category =
                category.ok_or_else(|| err("entry before the first [category] section".into()))?;
            let (weight, term) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| err("expected `WEIGHT TERM`".into()))?;
            let weight: f32 = weight
                .parse()
                .map_err(|_| err(format!("weight `{weight}` is not a number")))?;
            if !(weight > 0.0 && weight <= 1.0) {
                return Err(err(format!("weight {weight} is outside (0, 1]")));
            }
            let term = strip_comment(term.trim());
            let kind = if let Some(pattern) = term.strip_prefix("re:") {
                compile_pattern(pattern).map_err(|e| err(format!("bad pattern: {e}")))?;
                TermKind::Pattern(pattern.to_string())
            } else {
                let (text, prefix) = match term.strip_suffix('*') {
                    Some(t) => (t.trim_end(), true),
                    None => (term, false),
                };
                if text.is_empty() {
                    return Err(err("empty term".into()));
                }
                TermKind::Literal {
                    text: text.split_whitespace().collect::<Vec<_>>().join(" "),
                    prefix,
                }
            };
            entries.push(TermEntry {
                category,
                weight,
                kind,
            });
        }
        Ok(TermList { entries })
    }

    /// Reads a list in the format of the npm package `naughty-words` (a JSON array of
    /// strings, one file per language; CC-BY-4.0, by LDNOOBW and contributors: keep the
    /// attribution wherever the list is used). Every term gets `category` and `weight`,
    /// since the package does not categorize its terms.
    pub fn from_naughty_words_json(
        source: &str,
        json: &str,
        category: Category,
        weight: f32,
    ) -> Result<Self> {
        let terms: Vec<String> = serde_json::from_str(json).map_err(|e| Error::TermList {
            source_name: source.to_string(),
            line: e.line(),
            problem: format!("expected a JSON array of strings: {e}"),
        })?;
        let entries = terms
            .iter()
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty())
            .map(|text| TermEntry {
                category,
                weight,
                kind: TermKind::Literal {
                    text,
                    prefix: false,
                },
            })
            .collect();
        Ok(TermList { entries })
    }

    /// Appends the entries of `other`.
    pub fn extend(&mut self, other: TermList) {
        self.entries.extend(other.entries);
    }
}

/// Compiles a `re:` pattern: case-insensitive, with `\b` and `\B` as ASCII word
/// boundaries. (A Unicode `\b` makes the regex engine leave its fast DFA on any
/// non-ASCII text, which cost a factor of a hundred on mixed English and Chinese.)
pub(crate) fn compile_pattern(pattern: &str) -> std::result::Result<regex::Regex, regex::Error> {
    let mut src = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            src.push(c);
            continue;
        }
        match chars.next() {
            Some(b @ ('b' | 'B')) => {
                src.push_str("(?-u:\\");
                src.push(b);
                src.push(')');
            }
            Some(other) => {
                src.push('\\');
                src.push(other);
            }
            None => src.push('\\'),
        }
    }
    regex::RegexBuilder::new(&src)
        .case_insensitive(true)
        .build()
}

/// Drops a `  # comment` after a term (a `#` preceded by whitespace).
fn strip_comment(term: &str) -> &str {
    let bytes = term.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return term[..i].trim_end();
        }
    }
    term
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_weights_terms_and_patterns() {
        let text =
            "# c\n\n[hate]\n0.5 foo  bar   # note\n[violence/graphic]\n1 gore*\n0.9 re:\\bx+y\\b\n";
        let list = TermList::parse("t", text).unwrap();
        assert_eq!(list.entries.len(), 3);
        assert_eq!(list.entries[0].category, Category::Hate);
        assert_eq!(
            list.entries[0].kind,
            TermKind::Literal {
                text: "foo bar".into(),
                prefix: false
            }
        );
        assert_eq!(
            list.entries[1].kind,
            TermKind::Literal {
                text: "gore".into(),
                prefix: true
            }
        );
        assert_eq!(list.entries[2].kind, TermKind::Pattern("\\bx+y\\b".into()));
    }

    #[test]
    fn errors_name_source_line_and_problem() {
        let cases = [
            ("0.5 x\n", 1, "before the first"),
            ("[hate]\n\n[nope]\n", 3, "unknown category `nope`"),
            ("[hate]\n1.5 x\n", 2, "outside (0, 1]"),
            ("[hate]\nabc x\n", 2, "not a number"),
            ("[hate]\n0.5 re:(\n", 2, "bad pattern"),
            ("[hate]\n0.5 *\n", 2, "empty term"),
            ("[hate\n", 1, "without `]`"),
        ];
        for (text, line, want) in cases {
            let e = TermList::parse("my.terms", text).unwrap_err().to_string();
            assert!(e.contains(&format!("my.terms:{line}")), "{e}");
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn builtin_lists_parse_and_cover_every_category() {
        for (name, text) in [("en", BUILTIN_EN), ("zh", BUILTIN_ZH)] {
            let list = TermList::parse(name, text).unwrap();
            for c in Category::ALL {
                assert!(
                    list.entries.iter().any(|e| e.category == c),
                    "{name} has no entry for {c}"
                );
            }
        }
    }

    #[test]
    fn naughty_words_format() {
        let list = TermList::from_naughty_words_json(
            "en.json",
            r#"["a b", " ", "c"]"#,
            Category::Sexual,
            0.3,
        )
        .unwrap();
        assert_eq!(list.entries.len(), 2);
        let e = TermList::from_naughty_words_json("x.json", "{", Category::Sexual, 0.3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.json:1"), "{e}");
    }
}
