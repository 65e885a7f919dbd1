//! Street addresses: US style (house number, street name, USPS street suffix, optional
//! unit, city, state and ZIP; P.O. boxes and military APO/FPO/DPO addresses), mainland Chinese
//! (province, then city/district text, a street ending in 路/街/道/巷, a number with
//! 号/座/栋, optional unit and room, optional postcode), and the European street-then-number
//! form where a street-type word says it is a street: a type before the name (Rua, Calle,
//! Via, Rue, ul., ...: Portuguese, Spanish, Italian, French, Polish, Croatian), a type
//! word after it (Villacher Strasse, Király u., Hegedűs Gyula utca: German, Hungarian), or
//! a type ending the name (Brixtonlaan, Magrethevej, Koskikatu, Fagradalsbraut: Dutch,
//! German, Danish, Norwegian, Swedish, Finnish, Estonian, Icelandic), then a house number.
//! A street without a type word (Czech "Mlýnská 1540", Estonian "Kuuse 53", Greek
//! "Μεγάλη Άμμος 184") is claimed only with a building number of three to five digits
//! before it and the end of an address after it (`block::plain_street`); "the corner of A
//! and B" where A or B has a number or a street suffix.
//!
//! Around a street found, the block it belongs to is taken too: a unit and a building
//! number before it, units after it and up to five locality lines below it (also quoted
//! with "> "). All-lower-case text is read through a copy with every word capitalised.
//!
//! Patterns only, with explicit boundary checks; no gazetteer of street names. A US
//! address needs its suffix from USPS Publication 28, Appendix C1 (the list in
//! `street_types`), and one without a unit or city line whose number looks like a year
//! scores below the default threshold. A Chinese address needs one of the 34
//! province-level names at its start and a building number: "建国路" alone is not an
//! address.

use std::sync::OnceLock;

use regex::Regex;

mod block;
mod street_types;

pub(crate) use street_types::is_street_suffix;
use street_types::{
    EU_TYPES_AFTER, EU_TYPES_BEFORE, EU_TYPE_ENDINGS, HOUSE, NAME, PARTICLE, PROVINCES, STATES,
    STREET_SUFFIXES,
};

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{stands_alone, Recognizer};

struct Patterns {
    /// The street-type words and endings of `eu` followed by a space: where none occurs
    /// the European pattern cannot match, and it is not run (it is the costly one).
    eu_anchors: aho_corasick::AhoCorasick,
    eu: Regex,
    /// Anchored at the window's start (a house number).
    us: Regex,
    military: Regex,
    /// Anchored at the window's start (a province name).
    cn: Regex,
    /// The province names, where a Chinese address starts.
    provinces: aho_corasick::AhoCorasick,
    /// "the corner of A and B" (checked to name a street afterwards).
    corner: Regex,
    /// Where `corner` and `military` can match (built once: a searcher per call would
    /// cost more than the search on short texts).
    corner_at: memchr::memmem::Finder<'static>,
    box_at: memchr::memmem::Finder<'static>,
    po_at: memchr::memmem::Finder<'static>,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let mut suffixes: Vec<String> = STREET_SUFFIXES
            .iter()
            .flat_map(|s| [s.to_string(), s.to_uppercase()])
            .collect();
        suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
        suffixes.dedup();
        let dir = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)";
        let word = r"(?:\p{Lu}\p{Ll}+|\p{Lu}{2,}|\d+(?:st|nd|rd|th))";
        let us = [
            format!(r"(?P<num>\d{{1,6}}[A-Z]?)[ ]+(?:{dir}\.?[ ]+)?{word}(?:[ ]+{word}){{0,3}}"),
            format!(r"[ ]+(?:{})(?-u:\b)\.?(?:[ ]+{dir}(?-u:\b)\.?)?", suffixes.join("|")),
            r"(?P<unit>,?[ ]+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Room|Rm\.?|Floor|Fl\.?|\#)[ ]*\#?[0-9A-Za-z-]{1,6}(?-u:\b))?".to_string(),
            format!(r"(?P<city>(?:,[ ]*|[ ]*\n[ ]*|[ ]+)(?:\p{{Lu}}\p{{Ll}}+[ ]+){{0,2}}\p{{Lu}}\p{{Ll}}+,[ ]+(?:{STATES})[ ]+\d{{5}}(?:-\d{{4}})?(?-u:\b))?"),
        ]
        .concat();
        let military = r"(?:P\.? ?O\.? Box \d{1,6}(?-u:\b)|(?:Unit \d{4},? Box \d{4}|PSC \d{4},? Box \d{4}|(?:USNS|USS|USNV|USCGC) \p{Lu}\p{Ll}+)(?:,[ ]*|[ ]*\n[ ]*|[ ]+)(?:DPO|APO|FPO) (?:AA|AE|AP) \d{5}(?-u:\b))";
        let num = "[0-9０-９A-Za-z一二三四五六七八九十百零]";
        let cn = [
            format!(r"(?:{PROVINCES})\p{{Han}}{{0,14}}?(?:大道|胡同|路|街|道|巷)(?:{num}{{1,5}}(?:号|座|栋|幢|弄))"),
            format!(r"(?:{num}{{1,4}}(?:号楼|单元|栋|幢|层|楼|室|号)){{0,3}}(?:[ ]?\d{{6}}(?-u:\b))?"),
        ]
        .concat();
        let (name, particle, house) = (NAME, PARTICLE, HOUSE);
        let street = format!(r"(?:{EU_TYPES_BEFORE})[ ]+(?:{particle}[ ]+)*{name}(?:[ ]+(?:{particle}|{name})){{0,4}}");
        let eu = [
            // The street, then its number (a number before it too, as Faker writes them).
            format!(r"(?:(?:\d{{1,5}}[ ]+)?(?:{street}"),
            format!(r"|{name}(?:[ ]+{name}){{0,2}}[ ]+(?:{EU_TYPES_AFTER})"),
            format!(r"|\p{{Lu}}\p{{Ll}}{{2,}}(?:{EU_TYPE_ENDINGS}))[ ]+{house}"),
            // The number, then the street (French, Italian: "29 Rue de Tanger").
            format!(r"|\d{{1,5}}[ ]+{street})"),
            r"(?:,?[ ]*\n?[ ]*(?:Apt\.?|Apartment|Suite|Unit|Floor)[ ]+\d{1,5}(?-u:\b))?".to_string(),
        ]
        .concat();
        let anchors: Vec<String> = [EU_TYPES_BEFORE, EU_TYPES_AFTER, EU_TYPE_ENDINGS]
            .iter()
            .flat_map(|list| list.split('|'))
            .map(|t| format!("{} ", t.replace('\\', "").trim_end_matches('?')))
            .collect();
        Patterns {
            eu_anchors: aho_corasick::AhoCorasick::new(&anchors)
                .expect("the street-type anchors build"),
            eu: Regex::new(&eu).expect("the European address pattern is valid"),
            us: Regex::new(&format!("^(?:{us})")).expect("the US address pattern is valid"),
            military: Regex::new(military).expect("the military address pattern is valid"),
            cn: Regex::new(&format!("^(?:{cn})")).expect("the Chinese address pattern is valid"),
            corner: Regex::new(
                r"(?:[Tt]he[ ]+)?[Cc]orner of[ ]+[^\n,;?!]{3,60}?[ ]+and[ ]+\p{L}[\p{L}'-]*(?:[ ]+\p{L}[\p{L}'-]*){0,2}(?:[ ]+St\.)?",
            )
            .expect("the corner pattern is valid"),
            provinces: aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(PROVINCES.split('|'))
                .expect("the province names build"),
            corner_at: memchr::memmem::Finder::new("orner of "),
            box_at: memchr::memmem::Finder::new("Box "),
            po_at: memchr::memmem::Finder::new("PO "),
        }
    })
}

/// Finds US, European and Chinese street addresses (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct AddressRecognizer;

impl AddressRecognizer {
    /// A recognizer with the built-in patterns (compiled once per process).
    pub fn new() -> Self {
        AddressRecognizer
    }
}

impl Recognizer for AddressRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Address]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let mut found = Vec::new();
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            find_latin(text, &mut found);
        } else if text.bytes().any(|b| b.is_ascii_lowercase()) {
            // All in lower case (chat often is): the same patterns on a copy with every
            // word capitalised (byte lengths kept, so its spans are spans of `text`).
            find_latin(&capitalise_words(text), &mut found);
        }
        if text.bytes().any(|b| b >= 0xE0) {
            let p = patterns();
            let provinces = p
                .provinces
                .find_iter(text)
                .map(|m| window(text, m.start(), 0, 160));
            for range in matches_in(&p.cn, provinces) {
                found.push(Finding::new(PiiKind::Address, range, 0.85));
            }
        }
        out.extend(block::merge_overlapping(found));
    }
}

/// The Latin-script addresses of `text` (US, military, European, "the corner of").
fn find_latin(text: &str, out: &mut Vec<Finding>) {
    // Each pattern runs only on short windows around places where it can start (a
    // number before a capital, a street-type word, "Box", "corner of"): over a whole
    // document with Chinese text the Unicode classes would push the regex engine off
    // its DFA onto its slowest path.
    let p = patterns();
    let bytes = text.as_bytes();
    let mut push = |range: std::ops::Range<usize>, score: f32| {
        let widened = block::widen(text, range.clone());
        // A unit, a building number or locality lines around it: surely an address.
        let score = if widened != range {
            score.max(0.8)
        } else {
            score
        };
        out.push(Finding::new(PiiKind::Address, widened, score));
    };
    // "the corner of Main Street and Park Avenue" needs no number.
    let corners = p
        .corner_at
        .find_iter(bytes)
        .map(|at| window(text, at, 8, 160));
    for range in matches_in(&p.corner, corners) {
        if block::names_a_street(&text[range.clone()]) {
            push(range, 0.8);
        }
    }
    if !bytes.iter().any(u8::is_ascii_digit) {
        return;
    }
    for start in us_starts(bytes) {
        let window = window(text, start, 0, 250);
        // `find` runs on the DFA; captures (the slow engine) only on a match.
        if let Some(c) =
            p.us.find(window.1)
                .and_then(|m| p.us.captures(&window.1[..m.end()]))
        {
            let m = c.get(0).expect("group 0 always matches");
            let range = window.0 + m.start()..window.0 + m.end();
            if stands_alone(bytes, range.start, range.end) {
                let num = c.name("num").map_or("", |n| n.as_str());
                let full = c.name("unit").is_some() || c.name("city").is_some();
                let year_like = num.len() == 4 && (num.starts_with("19") || num.starts_with("20"));
                let score = match (full, year_like) {
                    (true, _) => 0.9,
                    (false, false) => 0.7,
                    (false, true) => 0.4,
                };
                push(range, score);
                continue;
            }
        }
        if let Some(range) = block::plain_street(text, window) {
            push(range, 0.7);
        }
    }
    let boxes = p
        .box_at
        .find_iter(bytes)
        .chain(p.po_at.find_iter(bytes))
        .map(|at| window(text, at, 40, 60));
    for range in matches_in(&p.military, boxes) {
        if stands_alone(bytes, range.start, range.end) {
            push(range, 0.9);
        }
    }
    let streets = p
        .eu_anchors
        .find_iter(text)
        .map(|m| window(text, m.start(), 120, 200));
    for range in matches_in(&p.eu, streets) {
        let end = range.start + text[range.clone()].trim_end_matches('.').len();
        if stands_alone(bytes, range.start, end) {
            push(range.start..end, 0.75);
        }
    }
}

/// `text` with the first letter of every word upper-cased where that keeps its byte
/// length.
fn capitalise_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_letter = false;
    for c in text.chars() {
        let mut up = c.to_uppercase();
        match (up.next(), up.next()) {
            (Some(u), None)
                if !after_letter && c.is_alphabetic() && u.len_utf8() == c.len_utf8() =>
            {
                out.push(u)
            }
            _ => out.push(c),
        }
        after_letter = c.is_alphanumeric();
    }
    out
}

/// `text[at - before .. at + after]`, widened to character boundaries, with its start.
fn window(text: &str, at: usize, before: usize, after: usize) -> (usize, &str) {
    let start = text.floor_char_boundary(at.saturating_sub(before));
    let end = text.ceil_char_boundary((at + after).min(text.len()));
    (start, &text[start..end])
}

/// The matches of `re` in each window (start offset, text), as ranges of the whole
/// text, in order and without overlaps (windows overlap; of two overlapping matches the
/// earlier, then the longer, is kept).
fn matches_in<'t>(
    re: &Regex,
    windows: impl Iterator<Item = (usize, &'t str)>,
) -> Vec<std::ops::Range<usize>> {
    let mut found: Vec<std::ops::Range<usize>> = windows
        .flat_map(|(start, w)| {
            re.find_iter(w)
                .map(move |m| start + m.start()..start + m.end())
        })
        .collect();
    found.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut kept: Vec<std::ops::Range<usize>> = Vec::with_capacity(found.len());
    for r in found {
        if kept.last().is_none_or(|k| r.start >= k.end) {
            kept.push(r);
        }
    }
    kept
}

/// Where a US address can start: the first digit of a run of digits (and an optional
/// capital) followed by spaces and an upper-case letter or a non-ASCII byte.
fn us_starts(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    (0..bytes.len()).filter(move |&i| {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            return false;
        }
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_uppercase() {
            j += 1;
        }
        let spaces = bytes[j..].iter().take_while(|&&b| b == b' ').count();
        spaces > 0
            && bytes
                .get(j + spaces)
                .is_some_and(|&b| b.is_ascii_uppercase() || b >= 0x80)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        AddressRecognizer.find(text, &mut out);
        out.into_iter()
            .filter(|f| f.score >= 0.5)
            .map(|f| &text[f.span])
            .collect()
    }

    #[test]
    fn us_addresses() {
        let a = "1224 Diane Rue Suite 757\nWilsonport, MS 45503";
        assert_eq!(found(&format!("Send it to {a}.")), [a]);
        assert_eq!(
            found("at 28921 Johnson Spring today"),
            ["28921 Johnson Spring"]
        );
        assert_eq!(
            found("1600 Pennsylvania Ave NW, Washington, DC 20500"),
            ["1600 Pennsylvania Ave NW, Washington, DC 20500"]
        );
        assert_eq!(
            found("PSC 8396, Box 0306\nAPO AE 05131"),
            ["PSC 8396, Box 0306\nAPO AE 05131"]
        );
        assert_eq!(found("385 Gemsbok St"), ["385 Gemsbok St"]);
        assert_eq!(found("P.O. Box 242, please"), ["P.O. Box 242"]);
    }

    #[test]
    fn european_streets_with_a_type_word() {
        for a in [
            "Brixtonlaan 380",
            "Magrethevej 298",
            "Koskikatu 25",
            "Fagradalsbraut 71",
            "Villacher Strasse 89",
            "Rua do Arenque 1634",
            "Via dei Fiorentini 17",
            "ul. Chrzanowska 61",
            "Calle Mayor 5b",
            "Király u. 15",
            "Hegedűs Gyula utca 76",
            "Rue de Tanger 29",
        ] {
            assert_eq!(found(&format!("Lives at {a}, since May.")), [a], "{a}");
        }
        // Number first (French, Italian), a unit, and the locality lines of a block.
        assert_eq!(found("au 29 Rue de Tanger."), ["29 Rue de Tanger"]);
        let block = "20789 Puruntie 46\n Suite 501\n Riisa\n\n Estonia 62488";
        assert_eq!(
            found(&format!("William Hughes\n\n{block}\nThanks a lot")),
            [block]
        );
    }

    #[test]
    fn streets_without_a_type_word_and_the_rest_of_their_block() {
        let block = "20789 Allika 46\n Suite 501\n Riisa\n\n Estonia 62488";
        assert_eq!(found(&format!("William Hughes\n\n{block}")), [block]);
        assert_eq!(
            found("lives at 10252 Μεγάλη Άμμος 184, ΠΑΦΟΣ"),
            ["10252 Μεγάλη Άμμος 184"]
        );
        // A unit and a building number before the street, a second number before a US one.
        assert_eq!(
            found("Mrs. Barbara Yudina Apt. 675 62314 Mellemvej 32."),
            ["Apt. 675 62314 Mellemvej 32"]
        );
        assert_eq!(found("at 17151 2450 Crown St"), ["17151 2450 Crown St"]);
        // A quoted block keeps its unit and locality lines.
        let block = "228 Ringvej 144\n>Apt. 902\n>Qaqortoq\n>Greenlander 96817";
        assert_eq!(found(&format!(">Ella H. Snider\n>{block}\n")), [block]);
        assert_eq!(
            found("it is the corner of Kuusiku 7 and Alexander Flat? I am in"),
            ["the corner of Kuusiku 7 and Alexander Flat"]
        );
        assert_eq!(
            found("at the corner of Main Street and Park Avenue."),
            ["the corner of Main Street and Park Avenue"]
        );
        // All in lower case.
        assert_eq!(
            found("meet me at 2407 tawastintie 6, sé, portugal"),
            ["2407 tawastintie 6"]
        );
        assert_eq!(
            found("it is 3747 3911 fourth avenue suite 112"),
            ["3747 3911 fourth avenue suite 112"]
        );
    }

    #[test]
    fn chinese_addresses() {
        let a = "上海市海门市房山潜江路w座 937406";
        assert_eq!(found(&format!("地址：{a}，谢谢")), [a]);
        assert_eq!(
            found("北京市朝阳区建国路88号3单元402室"),
            ["北京市朝阳区建国路88号3单元402室"]
        );
    }

    #[test]
    fn hard_negatives() {
        for text in [
            "We walked down Jefferson Street at noon.",
            "Main Street and Park Avenue",
            "In 2019 Green Park opened.",
            "Order 12345 Ships Today",
            "item 7 of the list",
            "他住在建国路附近",
            "北京市的道路很宽",
            "A123 Main Street",
            "Watergate 2 was a film",
            "Spring 2020 and String 5",
            "Via 3 routes",
            "Rue is a herb",
            "See Chapter 12 Section 3, then go on.",
            "In 2019 Apple sold 20 million, and in 2020 Google 30.",
            "We scored 3 Goals 2",
            "The score was 3 Arsenal 1, Chelsea 2.",
            "Between 2010 Toyota 4, and so on",
            "there were 12 Apostles 3",
            "he was born in 1990 and turned 30 in 2020, then moved to paris",
            "version 2 release 3, build 4",
            "I'm in the corner of the room and crying",
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
