//! The parts of an address block around a street that the street patterns leave out (a
//! unit and a building number before it, units after it, the locality lines below it),
//! and streets that carry no street-type word ("20789 Allika 46", "Mlýnská 1540").

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use super::is_street_suffix;
use super::street_types::{HOUSE, NAME, PARTICLE};
use crate::finding::Finding;
use crate::recognizer::stands_alone;

/// Lower-case street-type words that follow a street's name ("Luite tee 87",
/// "Stensås terrasse 38", "Merineitsi põik 87", "Trenerys gate 232").
const LOWER_TYPES: &str =
    "tee|põik|gate|terrasse|vei|veien|vegen|gata|plads|útja|kapu|köz|sor|rkp\\.|vej|gade|utca|út|tér|u\\.";

/// Capitalised words that a number, a word and a number often make outside addresses
/// ("12 Section 3", "2 Figure 4").
const NOT_STREETS: &[&str] = &[
    "Section", "Chapter", "Figure", "Table", "Page", "Part", "Step", "Version", "Level", "Round",
    "Row", "Line", "Item", "Volume", "Vol", "No", "Number", "Grade", "Class", "Phase", "Stage",
    "Year", "Week", "Day", "Game", "Season", "Episode", "Verse", "Room", "Floor", "Unit", "Apt",
    "Suite", "Box", "Rule", "Article", "Appendix", "Exhibit", "Lesson", "Model", "Series", "Gen",
    "Mark", "Type", "Size", "Pack",
];

/// Lower-case words inside place names ("Ostrov nad Ohrí", "Soto del Barco").
const PLACE_PARTICLES: &[&str] = &[
    "nad", "pod", "u", "na", "de", "del", "di", "da", "do", "la", "le", "am", "an", "im", "bei",
    "sur", "op", "aan", "en", "sous", "ob", "pri", "v",
];

struct BlockPatterns {
    /// A building number, a street name without a type word, a house number.
    plain: Regex,
    /// A unit and a building number just before a street (matched up to the window's end).
    lead: Regex,
    /// Units written after the street on its line.
    units: Regex,
    /// A line that holds a unit only ("Apt. 902", "Suite 680").
    unit_line: Regex,
}

fn patterns() -> &'static BlockPatterns {
    static P: OnceLock<BlockPatterns> = OnceLock::new();
    P.get_or_init(|| {
        let (name, particle, house) = (NAME, PARTICLE, HOUSE);
        let plain = format!(
            r"^(?P<num>\d{{3,5}})[ ]+(?P<first>\p{{Lu}}\p{{Ll}}{{2,}}(?:-\p{{Lu}}?\p{{Ll}}+)?)(?:[ ]+(?:{particle}|{name}|{LOWER_TYPES})){{0,3}}[ ]+{house}"
        );
        let unit = r"(?:Apt\.?|Apartment|Suite|Unit|Ste\.)[ ]+\#?\d{1,5}(?-u:\b)";
        BlockPatterns {
            plain: Regex::new(&plain).expect("the plain street pattern is valid"),
            lead: Regex::new(&format!(r"(?:{unit}[ ]+)?(?:\d{{1,5}}[ ]+)?$"))
                .expect("the lead pattern is valid"),
            units: Regex::new(&format!(r"^(?:,?[ ]+{unit})+")).expect("the unit pattern is valid"),
            unit_line: Regex::new(&format!("^{unit}$")).expect("the unit line pattern is valid"),
        }
    })
}

/// A street without a type word at the start of `window` (a building number of three to
/// five digits first, as in Faker's addresses: "20789 Allika 46", "10252 Μεγάλη Άμμος
/// 184"), where what follows it ends an address: a comma, a line break, a unit, "St." or
/// the end of the text (a line break or a unit where the first number looks like a year).
pub(super) fn plain_street(text: &str, window: (usize, &str)) -> Option<Range<usize>> {
    // `find` runs on the DFA; captures (the slow engine) only on a match.
    let found = patterns().plain.find(window.1)?;
    let c = patterns().plain.captures(&window.1[..found.end()])?;
    let m = c.get(0)?;
    if NOT_STREETS.contains(&c.name("first")?.as_str()) {
        return None;
    }
    let range = window.0 + m.start()..window.0 + m.end();
    let end = range.start + text[range.clone()].trim_end_matches('.').len();
    if !stands_alone(text.as_bytes(), range.start, end) {
        return None;
    }
    let rest = text[end..].trim_start_matches('.');
    let block_goes_on = rest.starts_with(['\n', '\r']) || patterns().units.is_match(rest);
    let ends_address =
        block_goes_on || rest.is_empty() || rest.starts_with(',') || rest.starts_with(" St.");
    // "In 2020 Google 30,": a year first needs the rest of a block after it.
    let num = &c["num"];
    let year_like = num.len() == 4 && (num.starts_with("19") || num.starts_with("20"));
    (ends_address && (block_goes_on || !year_like)).then_some(range.start..end)
}

/// True when "the corner of A and B" names a street: a number or a street suffix in it.
pub(super) fn names_a_street(phrase: &str) -> bool {
    phrase.bytes().any(|b| b.is_ascii_digit())
        || phrase
            .split(|c: char| !c.is_alphabetic())
            .any(|w| w.len() > 2 && is_street_suffix(w))
}

/// `range` widened over a unit and a building number written before it ("Apt. 675 62314
/// Mellemvej 32"), the units after it on its line and the locality lines below it.
pub(super) fn widen(text: &str, range: Range<usize>) -> Range<usize> {
    let p = patterns();
    let from = text.floor_char_boundary(range.start.saturating_sub(24));
    let mut start = range.start;
    if let Some(m) = p
        .lead
        .find(&text[from..range.start])
        .filter(|m| !m.is_empty())
    {
        let at = from + m.start();
        // Only the start needs a boundary: the match ends where the street begins.
        if stands_alone(text.as_bytes(), at, at + m.len() - 1) {
            start = at;
        }
    }
    let end = range.end + p.units.find(&text[range.end..]).map_or(0, |m| m.end());
    start..locality_lines_end(text, end)
}

/// Where an address block that ends at `end` really ends: up to five following lines
/// (one blank line allowed between) that hold only a unit, a place, a region code or a
/// postcode ("Apt. 902", "Riisa", "LAPPEENRANTA", "Estonia 62488", ", CO", "Cyprus
/// (Greek) 51034"), each at most 40 bytes, after a quoting prefix ("> ", "??? ").
pub(super) fn locality_lines_end(text: &str, end: usize) -> usize {
    let mut best = end;
    let mut at = end;
    let mut blank = false;
    for _ in 0..5 {
        let Some(rest) = text[at..].strip_prefix('\n') else {
            break;
        };
        let line_len = rest.find('\n').unwrap_or(rest.len());
        let line = rest[..line_len]
            .trim_start_matches(|c: char| c == '>' || c == '?' || c == '|' || c.is_whitespace())
            .trim_end();
        at += 1 + line_len;
        if line.is_empty() {
            if blank {
                break;
            }
            blank = true;
            continue;
        }
        if !(line.len() <= 40 && (is_locality(line) || patterns().unit_line.is_match(line))) {
            break;
        }
        best = at - line_len + rest[..line_len].trim_end().len();
    }
    best
}

/// A line of place words: capitalised words (short lower-case particles between them:
/// "Ostrov nad Ohrí"), region codes and postcodes.
fn is_locality(line: &str) -> bool {
    let words: Vec<&str> = line
        .split([' ', ','])
        .map(|w| w.trim_matches(['(', ')']))
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().all(|(i, w)| {
        let mut cs = w.chars();
        let first = cs.next().unwrap_or(' ');
        (first.is_uppercase() && cs.all(|c| c.is_alphabetic() || c == '-' || c == '.' || c == '\''))
            || (w.len() <= 6 && w.len() >= 4 && w.bytes().all(|b| b.is_ascii_digit()))
            || (i > 0 && PLACE_PARTICLES.contains(w))
            || *w == "nan"
    })
}

/// Address findings with overlapping spans merged into one (the highest score kept).
pub(super) fn merge_overlapping(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| f.span.start);
    let mut out: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        match out.last_mut() {
            Some(last) if f.span.start < last.span.end => {
                last.span.end = last.span.end.max(f.span.end);
                last.score = last.score.max(f.score);
            }
            _ => out.push(f),
        }
    }
    out
}
