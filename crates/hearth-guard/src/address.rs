//! Street addresses: US style (house number, street name, USPS street suffix, optional
//! unit, city, state and ZIP; P.O. boxes and military APO/FPO/DPO addresses), mainland Chinese
//! (province, then city/district text, a street ending in 路/街/道/巷, a number with
//! 号/座/栋, optional unit and room, optional postcode), and the European street-then-number
//! form where a street-type word says it is a street: a type before the name (Rua, Calle,
//! Via, Rue, ul., ...: Portuguese, Spanish, Italian, French, Polish, Croatian), a type
//! word after it (Villacher Strasse, Király u., Hegedűs Gyula utca: German, Hungarian), or
//! a type ending the name (Brixtonlaan, Magrethevej, Koskikatu, Fagradalsbraut: Dutch,
//! German, Danish, Norwegian, Swedish, Finnish, Estonian, Icelandic), then a house number.
//! Streets without a type word (Czech "Mlýnská 1540", Estonian "Kuuse 53") are not claimed.
//!
//! Patterns only, with explicit boundary checks; no gazetteer of street names. A US
//! address needs its suffix from USPS Publication 28, Appendix C1 (the full list below),
//! and one without a unit or city line whose number looks like a year scores below the
//! default threshold. A Chinese address needs one of the 34 province-level names at its
//! start and a building number: "建国路" alone is not an address.

use std::sync::OnceLock;

use regex::Regex;

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{stands_alone, Recognizer};

/// USPS street suffixes (Publication 28, Appendix C1): primary names and standard
/// abbreviations, in title case.
const STREET_SUFFIXES: &[&str] = &[
    "Alley",
    "Aly",
    "Anex",
    "Annex",
    "Anx",
    "Arcade",
    "Arc",
    "Avenue",
    "Ave",
    "Av",
    "Bayou",
    "Byu",
    "Beach",
    "Bch",
    "Bend",
    "Bnd",
    "Bluff",
    "Blf",
    "Bluffs",
    "Blfs",
    "Bottom",
    "Btm",
    "Boulevard",
    "Blvd",
    "Branch",
    "Br",
    "Bridge",
    "Brg",
    "Brook",
    "Brk",
    "Brooks",
    "Brks",
    "Burg",
    "Bg",
    "Burgs",
    "Bgs",
    "Bypass",
    "Byp",
    "Camp",
    "Cp",
    "Canyon",
    "Cyn",
    "Cape",
    "Cpe",
    "Causeway",
    "Cswy",
    "Center",
    "Ctr",
    "Centers",
    "Ctrs",
    "Circle",
    "Cir",
    "Circles",
    "Cirs",
    "Cliff",
    "Clf",
    "Cliffs",
    "Clfs",
    "Club",
    "Clb",
    "Common",
    "Cmn",
    "Commons",
    "Cmns",
    "Corner",
    "Cor",
    "Corners",
    "Cors",
    "Course",
    "Crse",
    "Court",
    "Ct",
    "Courts",
    "Cts",
    "Cove",
    "Cv",
    "Coves",
    "Cvs",
    "Creek",
    "Crk",
    "Crescent",
    "Cres",
    "Crest",
    "Crst",
    "Crossing",
    "Xing",
    "Crossroad",
    "Xrd",
    "Crossroads",
    "Xrds",
    "Curve",
    "Curv",
    "Dale",
    "Dl",
    "Dam",
    "Dm",
    "Divide",
    "Dv",
    "Drive",
    "Dr",
    "Drives",
    "Drs",
    "Estate",
    "Est",
    "Estates",
    "Ests",
    "Expressway",
    "Expy",
    "Extension",
    "Ext",
    "Extensions",
    "Exts",
    "Fall",
    "Falls",
    "Fls",
    "Ferry",
    "Fry",
    "Field",
    "Fld",
    "Fields",
    "Flds",
    "Flat",
    "Flt",
    "Flats",
    "Flts",
    "Ford",
    "Frd",
    "Fords",
    "Frds",
    "Forest",
    "Frst",
    "Forge",
    "Frg",
    "Forges",
    "Frgs",
    "Fork",
    "Frk",
    "Forks",
    "Frks",
    "Fort",
    "Ft",
    "Freeway",
    "Fwy",
    "Garden",
    "Gdn",
    "Gardens",
    "Gdns",
    "Gateway",
    "Gtwy",
    "Glen",
    "Gln",
    "Glens",
    "Glns",
    "Green",
    "Grn",
    "Greens",
    "Grns",
    "Grove",
    "Grv",
    "Groves",
    "Grvs",
    "Harbor",
    "Hbr",
    "Harbors",
    "Hbrs",
    "Haven",
    "Hvn",
    "Heights",
    "Hts",
    "Highway",
    "Hwy",
    "Hill",
    "Hl",
    "Hills",
    "Hls",
    "Hollow",
    "Holw",
    "Inlet",
    "Inlt",
    "Island",
    "Is",
    "Islands",
    "Iss",
    "Isle",
    "Junction",
    "Jct",
    "Junctions",
    "Jcts",
    "Key",
    "Ky",
    "Keys",
    "Kys",
    "Knoll",
    "Knl",
    "Knolls",
    "Knls",
    "Lake",
    "Lk",
    "Lakes",
    "Lks",
    "Land",
    "Landing",
    "Lndg",
    "Lane",
    "Ln",
    "Light",
    "Lgt",
    "Lights",
    "Lgts",
    "Loaf",
    "Lf",
    "Lock",
    "Lck",
    "Locks",
    "Lcks",
    "Lodge",
    "Ldg",
    "Loop",
    "Mall",
    "Manor",
    "Mnr",
    "Manors",
    "Mnrs",
    "Meadow",
    "Mdw",
    "Meadows",
    "Mdws",
    "Mews",
    "Mill",
    "Ml",
    "Mills",
    "Mls",
    "Mission",
    "Msn",
    "Motorway",
    "Mtwy",
    "Mount",
    "Mt",
    "Mountain",
    "Mtn",
    "Mountains",
    "Mtns",
    "Neck",
    "Nck",
    "Orchard",
    "Orch",
    "Oval",
    "Overpass",
    "Opas",
    "Park",
    "Parks",
    "Parkway",
    "Pkwy",
    "Parkways",
    "Pass",
    "Passage",
    "Psge",
    "Path",
    "Pike",
    "Pine",
    "Pne",
    "Pines",
    "Pnes",
    "Place",
    "Pl",
    "Plain",
    "Pln",
    "Plains",
    "Plns",
    "Plaza",
    "Plz",
    "Point",
    "Pt",
    "Points",
    "Pts",
    "Port",
    "Prt",
    "Ports",
    "Prts",
    "Prairie",
    "Pr",
    "Radial",
    "Radl",
    "Ramp",
    "Ranch",
    "Rnch",
    "Rapid",
    "Rpd",
    "Rapids",
    "Rpds",
    "Rest",
    "Rst",
    "Ridge",
    "Rdg",
    "Ridges",
    "Rdgs",
    "River",
    "Riv",
    "Road",
    "Rd",
    "Roads",
    "Rds",
    "Route",
    "Rte",
    "Row",
    "Rue",
    "Run",
    "Shoal",
    "Shl",
    "Shoals",
    "Shls",
    "Shore",
    "Shr",
    "Shores",
    "Shrs",
    "Skyway",
    "Skwy",
    "Spring",
    "Spg",
    "Springs",
    "Spgs",
    "Spur",
    "Spurs",
    "Square",
    "Sq",
    "Squares",
    "Sqs",
    "Station",
    "Sta",
    "Stravenue",
    "Stra",
    "Stream",
    "Strm",
    "Street",
    "St",
    "Streets",
    "Sts",
    "Summit",
    "Smt",
    "Terrace",
    "Ter",
    "Throughway",
    "Trwy",
    "Trace",
    "Trce",
    "Track",
    "Trak",
    "Trafficway",
    "Trfy",
    "Trail",
    "Trl",
    "Trailer",
    "Trlr",
    "Tunnel",
    "Tunl",
    "Turnpike",
    "Tpke",
    "Underpass",
    "Upas",
    "Union",
    "Un",
    "Unions",
    "Uns",
    "Valley",
    "Vly",
    "Valleys",
    "Vlys",
    "Viaduct",
    "Via",
    "View",
    "Vw",
    "Views",
    "Vws",
    "Village",
    "Vlg",
    "Villages",
    "Vlgs",
    "Ville",
    "Vl",
    "Vista",
    "Vis",
    "Walk",
    "Walks",
    "Wall",
    "Way",
    "Wy",
    "Ways",
    "Well",
    "Wl",
    "Wells",
    "Wls",
];

/// US states, DC, territories and the military "states" (AA, AE, AP).
const STATES: &str = concat!(
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|",
    "NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|AS|GU|MP|PR|VI|FM|MH|",
    "PW|AA|AE|AP"
);

/// Mainland China's province-level divisions (and Hong Kong, Macao, Taiwan).
const PROVINCES: &str = "北京市|天津市|上海市|重庆市|北京|天津|上海|重庆|河北省|山西省|辽宁省|吉林省|\
黑龙江省|江苏省|浙江省|安徽省|福建省|江西省|山东省|河南省|湖北省|湖南省|广东省|海南省|四川省|贵州省|\
云南省|陕西省|甘肃省|青海省|台湾省|内蒙古自治区|广西壮族自治区|西藏自治区|宁夏回族自治区|\
新疆维吾尔自治区|香港特别行政区|澳门特别行政区";

/// True when `word` is a USPS street suffix (title case or upper case).
pub(crate) fn is_street_suffix(word: &str) -> bool {
    STREET_SUFFIXES.contains(&word)
        || STREET_SUFFIXES.iter().any(|s| {
            s.len() == word.len()
                && s.eq_ignore_ascii_case(word)
                && word.len() > 1
                && word.bytes().all(|b| b.is_ascii_uppercase())
        })
}

/// Street-type words written before the street name (lower case ones as written).
const EU_TYPES_BEFORE: &str = "Rua|Avenida|Avda\\.|Av\\.|Calle|C/|Carrer|Paseo|Plaza|Praça|Travessa|Largo|Via|Viale|\
Vicolo|Piazza|Corso|Strada|Rue|Avenue|Boulevard|Bd\\.?|Chemin|Allée|Quai|Impasse|ul\\.|ulica|al\\.|Aleja|\
Plac|trg|Trg|Ulica|Cesta";

/// Street-type words written after the name, as a word of their own.
const EU_TYPES_AFTER: &str =
    "Strasse|Straße|Str\\.|Gasse|Weg|Platz|Allee|utca|u\\.|út|tér|körút|sétány";

/// Endings of one-word street names that carry their type (Brixtonlaan, Koskikatu).
/// English-looking endings ("gate", "ring", "way") are left out: "Watergate 2" is not
/// an address.
const EU_TYPE_ENDINGS: &str = "straße|strasse|gasse|weg|platz|allee|damm|ufer|straat|laan|plein|gracht|kade|\
dijk|singel|steeg|vej|gade|allé|stræde|veien|vegen|vägen|väg|gatan|gränd|stien|katu|tie|kuja|polku|tänav|\
maantee|braut|stræti|straeti|vegur|gata";

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
        let name = r"\p{Lu}\p{Ll}+(?:-\p{Lu}?\p{Ll}+)?";
        let particle = r"(?:de|do|da|dos|das|del|della|delle|di|du|des|la|le|los|las|dei|van|von|der)";
        let house = r"\d{1,4}[a-zA-Z]?(?:/\d{1,3})?(?-u:\b)\.?";
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
            provinces: aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(PROVINCES.split('|'))
                .expect("the province names build"),
        }
    })
}

/// Finds US and Chinese street addresses (see the module docs).
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
        // Each pattern runs only on short windows around places where it can start (a
        // number before a capital, a street-type word, "Box", a province name): over a
        // whole document with Chinese text the Unicode classes would push the regex
        // engine off its DFA onto its slowest path.
        let p = patterns();
        let bytes = text.as_bytes();
        let mut us_spans = Vec::new();
        if bytes.iter().any(u8::is_ascii_digit) {
            for start in us_starts(bytes) {
                let window = window(text, start, 0, 250);
                // `find` runs on the DFA; captures (the slow engine) only on a match.
                let Some(c) =
                    p.us.find(window.1)
                        .and_then(|m| p.us.captures(&window.1[..m.end()]))
                else {
                    continue;
                };
                let m = c.get(0).expect("group 0 always matches");
                let range = window.0 + m.start()..window.0 + m.end();
                if !stands_alone(bytes, range.start, range.end) {
                    continue;
                }
                let num = c.name("num").map_or("", |n| n.as_str());
                let full = c.name("unit").is_some() || c.name("city").is_some();
                let year_like = num.len() == 4 && (num.starts_with("19") || num.starts_with("20"));
                let score = match (full, year_like) {
                    (true, _) => 0.9,
                    (false, false) => 0.7,
                    (false, true) => 0.4,
                };
                us_spans.push(range.clone());
                out.push(Finding::new(PiiKind::Address, range, score));
            }
            let boxes = memchr::memmem::find_iter(bytes, "Box ")
                .chain(memchr::memmem::find_iter(bytes, "PO "))
                .map(|at| window(text, at, 40, 60));
            for range in matches_in(&p.military, boxes) {
                if stands_alone(bytes, range.start, range.end) {
                    us_spans.push(range.clone());
                    out.push(Finding::new(PiiKind::Address, range, 0.9));
                }
            }
            us_spans.sort_by_key(|r| r.start);
            // The furthest end among the spans up to each one (they may overlap).
            let reach: Vec<usize> = us_spans
                .iter()
                .scan(0, |far, r| {
                    *far = r.end.max(*far);
                    Some(*far)
                })
                .collect();
            let streets = p
                .eu_anchors
                .find_iter(text)
                .map(|m| window(text, m.start(), 120, 200));
            for range in matches_in(&p.eu, streets) {
                let end = range.start + text[range.clone()].trim_end_matches('.').len();
                // Inside a US address ("Diane Rue Suite 757") it is that address's part.
                let before_end = us_spans.partition_point(|f| f.start < end);
                let inside_us = before_end > 0 && reach[before_end - 1] > range.start;
                if !inside_us && stands_alone(bytes, range.start, end) {
                    let end = locality_lines_end(text, end);
                    out.push(Finding::new(PiiKind::Address, range.start..end, 0.75));
                }
            }
        }
        if bytes.iter().any(|&b| b >= 0xE0) {
            let provinces = p
                .provinces
                .find_iter(text)
                .map(|m| window(text, m.start(), 0, 160));
            for range in matches_in(&p.cn, provinces) {
                out.push(Finding::new(PiiKind::Address, range, 0.85));
            }
        }
    }
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

/// Where an address block that ends at `end` really ends: up to three following lines
/// (one blank line allowed between) that hold only a place, a region code or a postcode
/// ("Riisa", "LAPPEENRANTA", "Estonia 62488", ", CO"), each at most 40 bytes.
fn locality_lines_end(text: &str, end: usize) -> usize {
    let mut best = end;
    let mut at = end;
    let mut blank = false;
    for _ in 0..4 {
        let Some(rest) = text[at..].strip_prefix('\n') else {
            break;
        };
        let line_len = rest.find('\n').unwrap_or(rest.len());
        let line = rest[..line_len].trim();
        at += 1 + line_len;
        if line.is_empty() {
            if blank {
                break;
            }
            blank = true;
            continue;
        }
        let locality = line.len() <= 40
            && line.split([' ', ',']).filter(|w| !w.is_empty()).all(|w| {
                let mut cs = w.chars();
                let first = cs.next().unwrap_or(' ');
                (first.is_uppercase() && cs.all(|c| c.is_alphabetic() || c == '-' || c == '.'))
                    || (w.len() <= 6 && w.bytes().all(|b| b.is_ascii_digit()) && w.len() >= 4)
            });
        if !locality {
            break;
        }
        best = at - line_len + rest[..line_len].trim_end().len();
    }
    best
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
        ] {
            assert!(found(text).is_empty(), "{text}: {:?}", found(text));
        }
    }
}
