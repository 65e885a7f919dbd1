//! Phone numbers: international (`+` or `00`), North American, mainland China mobile,
//! national numbers with a trunk `0` (China landlines, UK, Germany, France, Netherlands...),
//! each checked for digit count and boundaries.
//!
//! National numbers in other groupings (`0490 75 40 81`, `03.93.92.16.85`, `(37) 788-063`,
//! 7 to 12 digits, one kind of separator, not shaped like a date) have no format that
//! tells them from other grouped numbers, so they count only with a phone word on the
//! same line shortly before them (`Phone:`, `call me on`) or right after them
//! (`416 60 039 office`, `... fax`).
//!
//! Numbers written as bare digit runs (`3306824628`, `13812345678`) are weak evidence on
//! their own: they score below the scanner's default threshold unless a phone word
//! (`call`, `tel`, `电话`, ...) stands shortly before them, and are dropped when an order
//! word (`order`, `invoice`, `订单`, ...) does.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexSet};

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{digit_runs, stands_alone, Recognizer};

/// How many bytes before a bare number are searched for context words.
const CONTEXT_WINDOW: usize = 48;

/// Words that make a bare digit run more likely a phone number.
const PHONE_WORDS: &[&str] = &[
    "phone", "call", "tel", "mobile", "cell", "contact", "fax", "text me", "reach", "dial",
    "number", "whatsapp", "电话", "手机", "联系", "致电", "号码", "热线", "拨打",
];

/// Words that, right after a grouped number, mark it as a phone number.
const PHONE_WORDS_AFTER: &[&str] = &[
    "phone", "tel", "mobile", "cell", "fax", "office", "desk", "home", "work",
];

/// How many bytes after a grouped number are searched for [`PHONE_WORDS_AFTER`].
const CONTEXT_AFTER: usize = 12;

/// Words that make a bare digit run an identifier rather than a phone number.
const ID_WORDS: &[&str] = &[
    "order",
    "invoice",
    "tracking",
    "ref",
    "account",
    "acct",
    "serial",
    "id:",
    "id ",
    "sku",
    "ticket",
    "case",
    "#",
    "no.",
    "ssn",
    "social security",
    "license",
    "licence",
    "passport",
    "订单",
    "单号",
    "编号",
    "流水",
    "账号",
    "快递",
];

/// The formats, each with how to score what it matches.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    International,
    NorthAmerican,
    ChinaMobile,
    Trunk,
    BareNorthAmerican,
    Grouped,
}

/// Finds phone numbers in the formats listed in the module documentation.
#[derive(Debug, Clone)]
pub struct PhoneRecognizer {
    formats: Vec<(Format, Regex)>,
    /// All format patterns at once: which of them match a region at all.
    any_format: RegexSet,
    phone_words: AhoCorasick,
    phone_words_after: AhoCorasick,
    id_words: AhoCorasick,
}

impl Default for PhoneRecognizer {
    fn default() -> Self {
        Self::new()
    }
}

const EXTENSION: &str = r"(?: ?(?:x|ext\.? ?)\d{1,5})?";

impl PhoneRecognizer {
    /// The recognizer with its patterns compiled.
    pub fn new() -> Self {
        let patterns = [
            (
                Format::International,
                format!(r"(?:\+|00)[1-9]\d{{0,2}}(?:[ .-]?\(0\))?(?:[ .-]?\(\d{{1,5}}\))?(?:[ .-]?\d{{1,5}}){{1,6}}{EXTENSION}"),
            ),
            (
                Format::NorthAmerican,
                format!(r"(?:\(\d{{3}}\) ?|\d{{3}}[ .-])\d{{3}}[ .-]\d{{4}}{EXTENSION}"),
            ),
            (Format::ChinaMobile, r"1[3-9]\d(?:[ -]?\d{4}){2}".to_string()),
            (
                Format::Trunk,
                r"\(0\d{1,4}\) ?\d{3,8}(?:[ -]\d{2,8}){0,3}|0\d{1,4}[ /-]\d{2,8}(?:[ -]\d{2,8}){0,3}|0[1-9]\d{8,10}"
                    .to_string(),
            ),
            (Format::BareNorthAmerican, format!(r"[2-9]\d{{9}}{EXTENSION}")),
            (
                Format::Grouped,
                r"(?:\(\d{1,4}\) ?)?\d{2,5}(?:[ .-]\d{2,7}){1,4}".to_string(),
            ),
        ];
        // ASCII digits only (`(?-u)`), as the digit runs that `find` hands over.
        let patterns = patterns.map(|(f, p)| (f, format!("(?-u){p}")));
        let any_format =
            RegexSet::new(patterns.iter().map(|(_, p)| p)).expect("built-in patterns compile");
        let formats = patterns
            .into_iter()
            .map(|(f, p)| (f, Regex::new(&p).expect("built-in pattern compiles")))
            .collect();
        let words = |list: &[&str]| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(list)
                .expect("built-in word list compiles")
        };
        PhoneRecognizer {
            formats,
            any_format,
            phone_words: words(PHONE_WORDS),
            phone_words_after: words(PHONE_WORDS_AFTER),
            id_words: words(ID_WORDS),
        }
    }

    /// The context score for a bare number starting at `start`: `None` to drop it.
    fn bare_score(&self, bytes: &[u8], start: usize, base: f32) -> Option<f32> {
        let window = &bytes[start.saturating_sub(CONTEXT_WINDOW)..start];
        // Whichever word stands nearest to the number decides.
        let nearest = |ac: &AhoCorasick| ac.find_iter(window).map(|m| m.end()).max();
        match (nearest(&self.phone_words), nearest(&self.id_words)) {
            (_, Some(id)) if nearest(&self.phone_words).is_none_or(|p| id > p) => None,
            (Some(_), _) => Some(0.85),
            _ => Some(base),
        }
    }
}

impl PhoneRecognizer {
    /// The context score for a grouped number at `start..end`: a phone word before it on
    /// the same line (and no identifier word nearer), or one right after it.
    fn line_context_score(&self, bytes: &[u8], start: usize, end: usize) -> Option<f32> {
        let window = start.saturating_sub(CONTEXT_WINDOW);
        let mut from =
            memchr::memrchr(b'\n', &bytes[window..start]).map_or(window, |i| window + i + 1);
        // A number that starts its line may take its label from the line above
        // (`Phone:` / newline / number).
        if from > window && bytes[from..start].iter().all(u8::is_ascii_whitespace) {
            let above = from - 1;
            from = memchr::memrchr(b'\n', &bytes[window..above]).map_or(window, |i| window + i + 1);
        }
        let to = bytes.len().min(end + CONTEXT_AFTER);
        let to = memchr::memchr(b'\n', &bytes[end..to]).map_or(to, |i| end + i);
        let before = &bytes[from..start];
        // Stricter than for bare runs: any identifier word on the line rules it out
        // (`social security number is ...`).
        if self.id_words.is_match(before) {
            return None;
        }
        if self.phone_words.is_match(before) {
            return Some(0.8);
        }
        self.phone_words_after
            .is_match(&bytes[end..to])
            .then_some(0.75)
    }
}

/// True when a grouped number has the shape of a US social security number (`123-45-6789`).
fn looks_like_ssn(candidate: &[u8]) -> bool {
    candidate.len() == 11
        && candidate.iter().enumerate().all(|(i, b)| match i {
            3 | 6 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// True when a grouped number reads as a date: `2024-05-06`, `06.05.2024`, `5/6/24`.
fn looks_like_date(candidate: &[u8]) -> bool {
    let groups: Vec<&[u8]> = candidate
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.len() != 3 {
        return false;
    }
    let value = |g: &[u8]| g.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let (y, m, d) = match lens.as_slice() {
        [4, 1 | 2, 1 | 2] => (groups[0], groups[1], groups[2]),
        [1 | 2, 1 | 2, 4] => (groups[2], groups[1], groups[0]),
        _ => return false,
    };
    let (y, m, d) = (value(y), value(m), value(d));
    (1900..=2100).contains(&y) && (1..=31).contains(&m) && (1..=31).contains(&d)
}

/// The digits in a candidate, not counting a `(0)` trunk marker nor the extension.
fn counted_digits(candidate: &[u8]) -> usize {
    let main = match memchr::memchr2(b'x', b'e', candidate) {
        Some(i) => &candidate[..i],
        None => candidate,
    };
    let trunk_marker = usize::from(main.windows(3).any(|w| w == b"(0)"));
    main.iter().filter(|b| b.is_ascii_digit()).count() - trunk_marker
}

/// True when every separator in the candidate's main part is the same byte (parentheses
/// and the space after a closing parenthesis aside).
fn separators_consistent(candidate: &[u8]) -> bool {
    let mut seen = None;
    for (i, &b) in candidate.iter().enumerate() {
        if b.is_ascii_digit() || b == b'(' || b == b')' || b == b'+' {
            continue;
        }
        if b == b'x' || b == b'e' {
            break;
        }
        if b == b' ' && i > 0 && candidate[i - 1] == b')' {
            continue;
        }
        if *seen.get_or_insert(b) != b {
            return false;
        }
    }
    true
}

impl Recognizer for PhoneRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Phone]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        // Every format is digits, spaces and `+().-/`, plus an extension of at most
        // eleven bytes (` ext. 12345`) after the run.
        let in_run = |b: u8| matches!(b, b' ' | b'+' | b'(' | b')' | b'.' | b'-' | b'/');
        for run in digit_runs(bytes, in_run, 7) {
            let region_end = bytes.len().min(run.end + 11);
            let formats = self.possible_formats(bytes, run.clone());
            self.find_in(bytes, run.start, region_end, formats, out);
        }
    }
}

/// Facts about a digit run that rule formats out before any pattern runs over it.
#[derive(Debug, Clone, Copy)]
struct RunShape {
    digits: usize,
    plus_or_00: bool,
    zero: bool,
    separated: bool,
}

impl PhoneRecognizer {
    /// Which formats can match in the digit run `run` (a cheap superset, so that most
    /// runs — dates, order numbers, amounts — skip most patterns).
    fn possible_formats(&self, bytes: &[u8], run: std::ops::Range<usize>) -> [bool; 6] {
        let r = &bytes[run.clone()];
        let shape = RunShape {
            digits: r.iter().filter(|b| b.is_ascii_digit()).count(),
            plus_or_00: memchr::memchr(b'+', r).is_some() || r.windows(2).any(|w| w == b"00"),
            zero: memchr::memchr(b'0', r).is_some(),
            separated: r.iter().any(|b| !b.is_ascii_digit()),
        };
        let grouped_context = || {
            // Any phone word a candidate in this run could see (see line_context_score):
            // before the run within the window, or just after the run's region.
            let before = &bytes[run.start.saturating_sub(CONTEXT_WINDOW)..run.start];
            let after_end = bytes.len().min(run.end + 11 + CONTEXT_AFTER);
            self.phone_words.is_match(before)
                || self.phone_words_after.is_match(&bytes[run.end..after_end])
        };
        let mut possible = [false; 6];
        for (i, (format, _)) in self.formats.iter().enumerate() {
            possible[i] = match format {
                Format::International => shape.plus_or_00 && shape.digits >= 8,
                Format::NorthAmerican | Format::BareNorthAmerican => shape.digits >= 10,
                Format::ChinaMobile => shape.digits >= 11,
                Format::Trunk => shape.zero && shape.digits >= 9,
                Format::Grouped => shape.separated && grouped_context(),
            };
        }
        possible
    }

    /// Runs the possible formats over `bytes[from..to]`, checking boundaries against all
    /// of `bytes`.
    fn find_in(
        &self,
        bytes: &[u8],
        from: usize,
        to: usize,
        possible: [bool; 6],
        out: &mut Vec<Finding>,
    ) {
        if !possible.iter().any(|&p| p) {
            return;
        }
        let matching = self.any_format.matches(&bytes[from..to]);
        for (i, (format, regex)) in self.formats.iter().enumerate() {
            if !possible[i] || !matching.matched(i) {
                continue;
            }
            for m in regex.find_iter(&bytes[from..to]) {
                let (start, end) = (from + m.start(), from + m.end());
                if !stands_alone(bytes, start, end) {
                    continue;
                }
                let candidate = m.as_bytes();
                let digits = counted_digits(candidate);
                let bare = candidate.iter().all(u8::is_ascii_digit);
                let score = match format {
                    Format::International => {
                        // `00` numbers must separate the country code, so zero-padded
                        // ids (`0012345678`) stay out.
                        let head = &candidate[..candidate.len().min(6)];
                        let ok = (8..=15).contains(&digits)
                            && (candidate[0] == b'+'
                                || head.iter().any(|b| matches!(b, b' ' | b'-' | b'.')));
                        ok.then_some(0.9)
                    }
                    Format::NorthAmerican => {
                        let ok = separators_consistent(candidate) && nanp_valid(candidate);
                        ok.then_some(0.85)
                    }
                    Format::ChinaMobile if bare => self.bare_score(bytes, start, 0.7),
                    Format::ChinaMobile => separators_consistent(candidate).then_some(0.9),
                    Format::Trunk if bare => self.bare_score(bytes, start, 0.4),
                    Format::Trunk => {
                        // `00` starts an international number, not a trunk.
                        let second = candidate.iter().filter(|b| b.is_ascii_digit()).nth(1);
                        let ok = (9..=12).contains(&digits)
                            && second != Some(&b'0')
                            && !looks_like_ssn(candidate);
                        ok.then_some(0.8)
                    }
                    Format::Grouped => {
                        let ok = !bare
                            && (7..=12).contains(&digits)
                            && separators_consistent(candidate)
                            && !looks_like_date(candidate)
                            && !looks_like_ssn(candidate);
                        if ok {
                            self.line_context_score(bytes, start, end)
                        } else {
                            None
                        }
                    }
                    Format::BareNorthAmerican => {
                        if nanp_valid(candidate) {
                            self.bare_score(bytes, start, 0.4)
                        } else {
                            None
                        }
                    }
                };
                if let Some(score) = score {
                    out.push(Finding::new(PiiKind::Phone, start..end, score));
                }
            }
        }
    }
}

/// True when the first ten digits form a valid North American number: area code and
/// exchange both start with 2–9.
fn nanp_valid(candidate: &[u8]) -> bool {
    let digits: Vec<u8> = candidate
        .iter()
        .filter(|b| b.is_ascii_digit())
        .take(10)
        .copied()
        .collect();
    digits.len() == 10 && digits[0] >= b'2' && digits[3] >= b'2'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, f32)> {
        let mut out = Vec::new();
        PhoneRecognizer::new().find(text, &mut out);
        let mut v: Vec<_> = out
            .iter()
            .map(|f| (text[f.span.clone()].to_string(), f.score))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        v
    }

    fn best(text: &str) -> Option<String> {
        found(text)
            .into_iter()
            .find(|(_, s)| *s >= 0.5)
            .map(|(t, _)| t)
    }

    #[test]
    fn international_and_north_american() {
        assert_eq!(
            best("Call +1-321-299-3518x543 now").as_deref(),
            Some("+1-321-299-3518x543")
        );
        assert_eq!(best("(412)623-3079").as_deref(), Some("(412)623-3079"));
        assert_eq!(
            best("tel 962.952.7601x89555.").as_deref(),
            Some("962.952.7601x89555")
        );
        assert_eq!(
            best("+44 20 7946 0958").as_deref(),
            Some("+44 20 7946 0958")
        );
        assert_eq!(
            best("+44(0)113 496 0123").as_deref(),
            Some("+44(0)113 496 0123")
        );
        assert_eq!(
            best("001-231-886-0913").as_deref(),
            Some("001-231-886-0913")
        );
        assert_eq!(
            best("+86 138 1234 5678").as_deref(),
            Some("+86 138 1234 5678")
        );
    }

    #[test]
    fn china() {
        assert_eq!(best("手机13812345678，").as_deref(), Some("13812345678"));
        assert_eq!(best("138-1234-5678").as_deref(), Some("138-1234-5678"));
        assert_eq!(best("座机010-12345678").as_deref(), Some("010-12345678"));
        assert_eq!(
            best("(0755) 8888 8888").as_deref(),
            Some("(0755) 8888 8888")
        );
    }

    #[test]
    fn european() {
        assert_eq!(best("ring 020 7946 0958").as_deref(), Some("020 7946 0958"));
        assert_eq!(best("Tel. 030/12345678").as_deref(), Some("030/12345678"));
        assert_eq!(best("06-12345678").as_deref(), Some("06-12345678"));
    }

    #[test]
    fn bare_numbers_need_context() {
        assert_eq!(best("call me: 3306824628").as_deref(), Some("3306824628"));
        assert_eq!(best("3306824628"), None);
        assert_eq!(best("Order 13812345678 shipped"), None);
        assert_eq!(best("订单号13812345678"), None);
    }

    #[test]
    fn grouped_national_numbers_need_a_phone_word_on_the_line() {
        assert_eq!(
            best("Phone: 0490 75 40 81").as_deref(),
            Some("0490 75 40 81")
        );
        assert_eq!(
            best("Mobile: 03.93.92.16.85").as_deref(),
            Some("03.93.92.16.85")
        );
        assert_eq!(best("Phone: (37) 788-063").as_deref(), Some("(37) 788-063"));
        assert_eq!(best("call me on 467 3395?").as_deref(), Some("467 3395"));
        assert_eq!(best("416 60 039 office").as_deref(), Some("416 60 039"));
        assert_eq!(
            best("Phone:\n  21 284 698 2548").as_deref(),
            Some("21 284 698 2548")
        );
        assert_eq!(best("the 490 75 40 81 items"), None);
        assert_eq!(best("Phone: 555\nlot 490 75 40 81"), None);
        assert_eq!(best("Phone: see order 490 75 40 81"), None);
        assert_eq!(best("Phone: 2024-05-06"), None);
        assert_eq!(best("tel 06.05.2024"), None);
        assert_eq!(best("phone 12-34.56 78"), None);
        assert_eq!(best("social security number is 853-37-1694"), None);
        assert_eq!(best("phone 853-37-1694"), None);
        assert_eq!(best("SSN: 054-28-6917"), None);
        assert_eq!(best("driver's license number is 2270-66-1551"), None);
    }

    #[test]
    fn hard_negatives() {
        assert!(best("id 213812345678901").is_none(), "inside a longer run");
        assert!(best("on 2024-05-06 at 10:30").is_none());
        assert!(best("05-06-2024").is_none());
        assert!(best("ISBN 978-3-16-148410-0").is_none());
        assert!(best("123-456-7890").is_none(), "area code starting with 1");
        assert!(best("x13812345678").is_none());
    }
}
