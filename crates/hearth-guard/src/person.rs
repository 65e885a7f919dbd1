//! Person names: English (a given-name dictionary, capitalisation and context cues) and
//! Chinese (a surname list, one or two given-name characters and context cues).
//!
//! English lists: `data/en_given_names.txt` and `data/en_surnames.txt` come from the PyPI
//! package `names` 0.3.0 (MIT), i.e. the 1990 US Census name files (public domain);
//! `data/en_name_words.txt` lists given names that are also common words ("Will", "May",
//! "Hope"). `data/intl_given_names.txt` and `data/intl_surnames.txt` add Latin-script
//! names of 46 other locales (European, Latin American, African, romanised Japanese) from
//! the PyPI package Faker 37.1.0 (MIT), without those that are English words
//! (`tools/intl_given_names.py` writes them). A run of capitalised words is a name when
//! - a title (`Mr`, `Ms`, `Dr`, ...) or a cue (`my name is`, `Dear`, `Hi`) comes before it
//!   (the title is not part of the span), or
//! - it starts with a known given name: two or more words always, a single word only if
//!   the given name is not also a common word.
//!
//! Runs followed by a company word (`Inc`, `Associates`, ...) or a street suffix, or
//! preceded by a house number, are not names. Precision comes before recall: a surname
//! alone, a name in lower case, or a foreign given name without a cue is missed.
//!
//! Chinese: the common surnames of the Hundred Family Surnames (a public-domain classic;
//! characters that are mostly function words, such as 和 or 时, left out) and one or two
//! given-name characters, only after a cue (我叫, 姓名：, 联系人：, ...) or before a form
//! of address (先生, 女士, 小姐, 老师, 同学).

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::finding::{Finding, PiiKind};
use crate::recognizer::Recognizer;

mod words;
use words::{BREAKERS, CUES, ORG_WORDS, TITLES};

const GIVEN: &str = include_str!("../data/en_given_names.txt");
const SURNAMES: &str = include_str!("../data/en_surnames.txt");
const NAME_WORDS: &str = include_str!("../data/en_name_words.txt");
const INTL_GIVEN: &str = include_str!("../data/intl_given_names.txt");
const INTL_SURNAMES: &str = include_str!("../data/intl_surnames.txt");
const INTL_PLACES: &str = include_str!("../data/intl_given_places.txt");
const NAMES_THAT_ARE_WORDS: &str = include_str!("../data/en_names_that_are_words.txt");

struct EnLists {
    given: HashSet<&'static str>,
    /// Given names of other locales.
    intl_given: HashSet<&'static str>,
    /// Those of them that are also place words ("York", "Berlin"): never alone.
    intl_places: HashSet<&'static str>,
    /// Census names that are also lower-case English words ("WILL", "SEE").
    worded: HashSet<&'static str>,
    surnames: HashSet<&'static str>,
    words: HashSet<&'static str>,
    /// [`BREAKERS`], [`TITLES`] and [`ORG_WORDS`], hashed: asked of every token.
    breakers: HashSet<&'static str>,
    titles: HashSet<&'static str>,
    org_words: HashSet<&'static str>,
    token: Regex,
}

impl EnLists {
    /// Whether `upper` (an upper-cased word) is a given name; `alone`: the word is the
    /// whole run, where other locales' names that are also places do not count.
    fn is_given(&self, upper: &str, alone: bool) -> bool {
        self.given.contains(upper)
            || (self.intl_given.contains(upper) && !(alone && self.intl_places.contains(upper)))
    }
}

fn list(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn en_lists() -> &'static EnLists {
    static LISTS: OnceLock<EnLists> = OnceLock::new();
    LISTS.get_or_init(|| EnLists {
        given: list(GIVEN),
        intl_given: list(INTL_GIVEN),
        intl_places: list(INTL_PLACES),
        worded: list(NAMES_THAT_ARE_WORDS),
        surnames: list(SURNAMES)
            .union(&list(INTL_SURNAMES))
            .copied()
            .collect(),
        words: list(NAME_WORDS),
        breakers: BREAKERS.iter().copied().collect(),
        titles: TITLES.iter().copied().collect(),
        org_words: ORG_WORDS.iter().copied().collect(),
        // A capitalised word (McDonald, O'Brien, Jean-Luc) or an initial (`P.`, or `P`
        // alone: a letter glued to others, as in "USA", breaks the run instead).
        token: Regex::new(
            r"\p{Lu}(?:\p{Ll}+(?:\p{Lu}\p{Ll}+)?(?:[-'’]\p{Lu}\p{Ll}+)?|['’]\p{Lu}\p{Ll}+|\.)?",
        )
        .expect("the name token pattern is valid"),
    })
}

/// Finds English and Chinese person names (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct PersonRecognizer;

impl PersonRecognizer {
    /// A recognizer with the built-in lists (loaded once per process).
    pub fn new() -> Self {
        PersonRecognizer
    }
}

impl Recognizer for PersonRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Person]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            find_english(text, out);
        } else if text.bytes().any(|b| b.is_ascii_lowercase()) {
            // All in lower case (chat often is): the same rules on a copy with the
            // known names capitalised.
            find_english(&capitalise_names(text, en_lists()), out);
        }
        if text.bytes().any(|b| b >= 0xE0) {
            crate::person_zh::find_chinese(text, out);
        }
    }
}

/// `text` with the first letter of every word that is a known given name or surname
/// upper-cased (where that keeps its byte length, so spans found in the copy are spans
/// of `text`): in all-lower-case text only the dictionaries can say what a name is.
fn capitalise_names(text: &str, lists: &EnLists) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_alphabetic()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest
            .find(|c: char| !(c.is_alphabetic() || c == '-'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let known = {
            let u = upper(word);
            !lists.worded.contains(u.as_str())
                && (lists.is_given(&u, false) || lists.surnames.contains(u.as_str()))
        };
        let mut chars = word.chars();
        let first = chars.next().expect("a word has a first letter");
        let mut up = first.to_uppercase();
        match (up.next(), up.next()) {
            (Some(u), None) if known && u.len_utf8() == first.len_utf8() => {
                out.push(u);
                out.push_str(chars.as_str());
            }
            _ => out.push_str(word),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A letter or digit that glues a capitalised word to its neighbour; CJK characters
/// do not (Chinese text puts Latin names right against Han characters).
fn glues(c: char) -> bool {
    c.is_alphanumeric() && c < '\u{2E80}'
}

fn upper(word: &str) -> String {
    word.to_uppercase()
}

/// The spans of `lists.token`'s matches in `text`. ASCII text (most of it) is scanned by
/// hand, with the same matches as the pattern's (tested), at a fraction of its cost.
fn name_tokens(text: &str, lists: &EnLists) -> Vec<std::ops::Range<usize>> {
    if !text.is_ascii() {
        return lists.token.find_iter(text).map(|m| m.range()).collect();
    }
    let b = text.as_bytes();
    let lower_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_lowercase) {
            i += 1;
        }
        i
    };
    // `X` then lower case (at least one letter) from `i`: the end of that, if there.
    let capital_word = |i: usize| {
        let end = lower_from(i + 1);
        (b.get(i).is_some_and(u8::is_ascii_uppercase) && end > i + 1).then_some(end)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_uppercase() {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = lower_from(i + 1);
        if end > i + 1 {
            // McDonald, then Jean-Luc or O'Brien-style tails.
            end = capital_word(end).unwrap_or(end);
            if matches!(b.get(end), Some(b'-' | b'\'')) {
                end = capital_word(end + 1).unwrap_or(end);
            }
        } else if b.get(end) == Some(&b'\'') {
            end = capital_word(end + 1).unwrap_or(end);
        } else if b.get(end) == Some(&b'.') {
            end += 1;
        }
        out.push(start..end);
        i = end;
    }
    out
}

/// The capitalised-word runs of `text`: tokens joined by one space (or `. ` after an
/// initial), as (start, end) byte pairs per token.
fn runs(text: &str, lists: &EnLists) -> Vec<Vec<(usize, usize)>> {
    let mut runs: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut current: Vec<(usize, usize)> = Vec::new();
    let bytes = text.as_bytes();
    for std::ops::Range { start: s, end: e } in name_tokens(text, lists) {
        let glued_before = text[..s].chars().next_back().is_some_and(glues);
        let glued_after = text[e..].chars().next().is_some_and(glues);
        let word = &text[s..e];
        let joined = current
            .last()
            .is_some_and(|&(_, pe)| s == pe + 1 && bytes[pe] == b' ');
        // "A" and "I" break a run, except as a middle initial ("Juliusz A Kwiatkowski").
        let middle_initial = word.len() == 1
            && joined
            && text[e..]
                .strip_prefix(' ')
                .and_then(|r| r.chars().next())
                .is_some_and(char::is_uppercase);
        if glued_before || glued_after || (lists.breakers.contains(word) && !middle_initial) {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !joined && !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
        current.push((s, e));
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

fn find_english(text: &str, out: &mut Vec<Finding>) {
    let lists = en_lists();
    let first_new = out.len();
    for mut run in runs(text, lists) {
        // Capitalised words before a title or a known given name (a sentence start,
        // "Ask", "Meet") are context, not name; so is the title. After a cue, the
        // whole run is the name.
        let Some(&(run_start, first_end)) = run.first() else {
            continue;
        };
        let mut titled = title_before(&text[..run_start]);
        let first_upper = upper(&text[run_start..first_end]);
        let first_known = lists.is_given(&first_upper, false);
        let cued = !titled && cue_before(&text[..run_start], first_known);
        while let Some(&(s, e)) = run.first() {
            let w = &text[s..e];
            if lists.titles.contains(w) {
                titled = true;
                run.remove(0);
                break;
            }
            let u = upper(w);
            // "See Sharon Lane": a common word before a name, unless it is a two-word
            // run ending in a surname ("Victor Johnson").
            let leading_word = lists.words.contains(u.as_str())
                && (run.len() > 2
                    || run.get(1).is_some_and(|&(s, e)| {
                        !lists.surnames.contains(upper(&text[s..e]).as_str())
                    }));
            let starts_name = lists.is_given(&u, run.len() == 1);
            if titled || cued || (starts_name && !leading_word) {
                break;
            }
            run.remove(0);
        }
        // Initials may sit inside a name, never at its ends.
        while run.last().is_some_and(|&(s, e)| is_initial(&text[s..e])) {
            run.pop();
        }
        while run.first().is_some_and(|&(s, e)| is_initial(&text[s..e])) {
            run.remove(0);
        }
        run.truncate(4);
        let (Some(&(start, _)), Some(&(_, end))) = (run.first(), run.last()) else {
            continue;
        };
        let before = &text[..start];
        let after = &text[end..];
        let org_inside = run
            .iter()
            .any(|&(s, e)| lists.org_words.contains(&text[s..e]));
        // "Reed Mall", "Jason Meadow": a street, unless a title or cue says otherwise.
        let street = run.len() > 1
            && !titled
            && !cued
            && run
                .last()
                .is_some_and(|&(s, e)| crate::address::is_street_suffix(&text[s..e]));
        if org_inside || street || followed_by_org_or_street(after) || preceded_by_number(before) {
            continue;
        }
        let words: Vec<&str> = run.iter().map(|&(s, e)| &text[s..e]).collect();
        let first = upper(words[0]);
        let last = upper(words[words.len() - 1]);
        let known_given = lists.is_given(&first, words.len() == 1);
        let common = lists.words.contains(first.as_str());
        let score = if titled {
            0.9
        } else if cued && (words.len() > 1 || !common) {
            0.85
        } else if known_given && words.len() > 1 {
            if lists.surnames.contains(last.as_str()) {
                0.8
            } else if common {
                0.0
            } else {
                0.7
            }
        } else if known_given && !common {
            0.6
        } else {
            0.0
        };
        if score > 0.0 {
            out.push(Finding::new(PiiKind::Person, start..end, score));
        }
    }
    mentions_again(text, lists, out, first_new);
}

/// `P.` or a bare capital `P`.
fn is_initial(word: &str) -> bool {
    word.ends_with('.') || word.chars().count() == 1
}

/// A word of a name found in this text is that person again where it stands alone
/// later ("Hannah McConnan ... McConnan said"), capitalised and not glued to a word.
fn mentions_again(text: &str, lists: &EnLists, out: &mut Vec<Finding>, first_new: usize) {
    let found: Vec<std::ops::Range<usize>> = out[first_new..]
        .iter()
        .filter(|f| f.kind == PiiKind::Person)
        .map(|f| f.span.clone())
        .collect();
    if found.is_empty() {
        return;
    }
    let words: HashSet<&str> = found
        .iter()
        .flat_map(|r| text[r.clone()].split(' '))
        .filter(|w| w.chars().count() >= 3 && !w.ends_with('.'))
        .collect();
    let mut found = found;
    found.sort_by_key(|r| r.start);
    for m in name_tokens(text, lists) {
        let from = found.partition_point(|r| r.end <= m.start);
        let inside = found[from..]
            .iter()
            .take_while(|r| r.start < m.end)
            .any(|r| m.start < r.end);
        let glued = text[..m.start].chars().next_back().is_some_and(glues)
            || text[m.end..].chars().next().is_some_and(glues);
        if !inside && !glued && words.contains(&text[m.clone()]) {
            out.push(Finding::new(PiiKind::Person, m, 0.6));
        }
    }
}

/// A title (with or without its dot) right before the name.
fn title_before(before: &str) -> bool {
    let b = before.trim_end_matches(' ');
    if b.len() == before.len() {
        return false;
    }
    let b = b.strip_suffix('.').unwrap_or(b);
    TITLES.iter().any(|t| {
        b.strip_suffix(t)
            .is_some_and(|rest| !rest.chars().next_back().is_some_and(glues))
    })
}

fn cue_before(before: &str, known_given: bool) -> bool {
    let b = before.trim_end_matches([' ', ',', ':']);
    if b.len() == before.len() && !before.ends_with(':') {
        return false;
    }
    let tail_start = b.floor_char_boundary(b.len().saturating_sub(16));
    let tail = b[tail_start..].to_lowercase();
    CUES.iter().any(|&(cue, any_word)| {
        if !any_word && !known_given {
            return false;
        }
        let cue = cue.trim_end_matches([',', ':']);
        tail.strip_suffix(cue)
            .is_some_and(|rest| !rest.chars().next_back().is_some_and(char::is_alphanumeric))
    })
}

fn followed_by_org_or_street(after: &str) -> bool {
    let rest = after.strip_prefix([' ', ',']).unwrap_or(after);
    if rest.starts_with('&') || rest.starts_with("and Sons") || rest.starts_with("& ") {
        return true;
    }
    let word: String = rest.chars().take_while(|c| c.is_alphabetic()).collect();
    !word.is_empty()
        && (ORG_WORDS.contains(&word.as_str()) || crate::address::is_street_suffix(&word))
}

/// A house number or an `&` before the run: an address or a firm ("Johnson & Johnson").
fn preceded_by_number(before: &str) -> bool {
    let b = before.trim_end_matches(' ');
    b.len() < before.len() && b.ends_with(|c: char| c.is_ascii_digit() || c == '&')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        PersonRecognizer.find(text, &mut out);
        crate::scanner::resolve_overlaps(out)
            .into_iter()
            .map(|f| &text[f.span])
            .collect()
    }

    #[test]
    fn english_names_with_dictionary_and_cues() {
        assert_eq!(
            names("Ask Danielle Rodriguez about it."),
            ["Danielle Rodriguez"]
        );
        assert_eq!(names("Mr. Ferko Takáts called."), ["Ferko Takáts"]);
        assert_eq!(names("My name is Rubija"), ["Rubija"]);
        assert_eq!(names("Dr Hannah McConnan, please."), ["Hannah McConnan"]);
        assert_eq!(names("Catherine is kind."), ["Catherine"]);
        assert_eq!(names("Vanessa P. Hertzog signed."), ["Vanessa P. Hertzog"]);
        assert_eq!(names("Ruth R Montez called"), ["Ruth R Montez"]);
        assert_eq!(
            names("ask Juliusz A Kwiatkowski."),
            ["Juliusz A Kwiatkowski"]
        );
        assert_eq!(names("Hiroshi K Nishiyama wrote"), ["Hiroshi K Nishiyama"]);
        assert_eq!(names("Ruth B and the USA"), ["Ruth"]);
        // All in lower case: the same dictionaries and cues.
        assert_eq!(names("my name is lena andersson."), ["lena andersson"]);
        assert_eq!(
            names("follow up with patricia desrosiers soon"),
            ["patricia desrosiers"]
        );
        assert_eq!(names("Hi Vinicio, I'm writing"), ["Vinicio"]);
        assert_eq!(
            names("Hannah McConnan wrote it; McConnan said so"),
            ["Hannah McConnan", "McConnan"]
        );
    }

    #[test]
    fn ascii_name_tokens_match_the_pattern() {
        let lists = en_lists();
        let alphabet = b"AaBbMcZz '-.x D";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (state >> 59) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(alphabet[(state % alphabet.len() as u64) as usize])
                })
                .collect();
            let by_pattern: Vec<_> = lists.token.find_iter(&text).map(|m| m.range()).collect();
            assert_eq!(name_tokens(&text, lists), by_pattern, "{text:?}");
        }
        for text in [
            "Jean-Luc O'Brien McDonald P. USA D'Arcy-Smith Mc-",
            "X'Y'Zz A-b",
        ] {
            let by_pattern: Vec<_> = lists.token.find_iter(text).map(|m| m.range()).collect();
            assert_eq!(name_tokens(text, lists), by_pattern, "{text:?}");
        }
    }

    #[test]
    fn hard_negatives() {
        // Capitalised common words, sentence starts, organisations, streets, places.
        for text in [
            "Will you come? May I? Hope So.",
            "The Board Meeting is on Monday.",
            "Morgan Stanley Inc reported a loss.",
            "Johnson & Johnson makes soap.",
            "We walked down Jefferson Street.",
            "He lives at 1224 Diane Rue.",
            "New York and San Francisco.",
            "From York to Berlin.",
            "Grace under pressure.",
            "Take Jason Meadow towards the river.",
            "I am Happy today",
            "i will see you in june, may i?",
        ] {
            assert!(names(text).is_empty(), "{text}: {:?}", names(text));
        }
    }
}
