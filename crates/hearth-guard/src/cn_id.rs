//! Mainland China resident identity numbers (公民身份号码, GB 11643-1999).

use regex::bytes::Regex;

use crate::cn_region_table::REGION_CODES;
use crate::finding::{Finding, PiiKind};
use crate::recognizer::{digit_runs, stands_alone, Recognizer};

/// Finds 18-character resident ID numbers and keeps those whose province code, birth date
/// (a real date, year 1900 or later, not after today) and ISO 7064 MOD 11-2 check
/// character (`X` for 10) are all valid. Scores 1.0 when the six-digit region code is in
/// the 2015 table, 0.9 when only its province is (older IDs keep retired codes).
#[derive(Debug, Clone)]
pub struct CnResidentIdRecognizer {
    pattern: Regex,
    latest_birth: (u32, u32, u32),
}

/// Province-level codes (two leading digits), including 71 (Taiwan), 81 (Hong Kong) and
/// 82 (Macao) residence permits and 83 (residence permits' national code).
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

impl Default for CnResidentIdRecognizer {
    fn default() -> Self {
        Self::new()
    }
}

impl CnResidentIdRecognizer {
    /// A recognizer that rejects birth dates after today (UTC, from the system clock).
    pub fn new() -> Self {
        CnResidentIdRecognizer {
            pattern: Regex::new(r"(?-u)[1-8]\d{16}[\dXx]").expect("built-in pattern compiles"),
            latest_birth: today_utc(),
        }
    }

    /// The same recognizer, rejecting birth dates after `year-month-day`.
    pub fn with_latest_birth_date(mut self, year: u32, month: u32, day: u32) -> Self {
        self.latest_birth = (year, month, day);
        self
    }

    /// The score of an 18-byte candidate, or `None` if it is not a valid ID.
    pub fn validate(&self, id: &[u8]) -> Option<f32> {
        if id.len() != 18 || !id[..17].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| {
            id[r]
                .iter()
                .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
        };
        let province = num(0..2) as u8;
        if !PROVINCES.contains(&province) {
            return None;
        }
        let (year, month, day) = (num(6..10), num(10..12), num(12..14));
        if year < 1900
            || (year, month, day) > self.latest_birth
            || !is_calendar_date(year, month, day)
        {
            return None;
        }
        let sum: u32 = id[..17]
            .iter()
            .zip(WEIGHTS)
            .map(|(&b, w)| u32::from(b - b'0') * w)
            .sum();
        let check = (12 - sum % 11) % 11;
        let expected = if check == 10 {
            b'X'
        } else {
            b'0' + check as u8
        };
        if id[17].to_ascii_uppercase() != expected {
            return None;
        }
        let in_table = REGION_CODES.binary_search(&num(0..6)).is_ok();
        Some(if in_table { 1.0 } else { 0.9 })
    }
}

/// Today's date in UTC as (year, month, day), from the system clock (Hinnant's
/// days-to-civil algorithm).
fn today_utc() -> (u32, u32, u32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
    (year, month, day)
}

/// True when `year-month-day` is a real Gregorian date.
pub(crate) fn is_calendar_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

impl Recognizer for CnResidentIdRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::CnResidentId]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        // Matches lie in runs of digits and `X`/`x` with 17 or more digits.
        for run in digit_runs(bytes, |b| b == b'X' || b == b'x', 17) {
            for m in self.pattern.find_iter(&bytes[run.clone()]) {
                let (start, end) = (run.start + m.start(), run.start + m.end());
                if !stands_alone(bytes, start, end) {
                    continue;
                }
                if let Some(score) = self.validate(m.as_bytes()) {
                    out.push(Finding::new(PiiKind::CnResidentId, start..end, score));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&str, f32)> {
        let mut out = Vec::new();
        CnResidentIdRecognizer::new().find(text, &mut out);
        out.iter()
            .map(|f| (&text[f.span.clone()], f.score))
            .collect()
    }

    #[test]
    fn accepts_valid_ids() {
        // GB 11643-1999's own example, and one with an X check character.
        assert_eq!(
            found("身份证号11010519491231002X。"),
            [("11010519491231002X", 1.0)]
        );
        assert_eq!(
            found("id: 330302199602052737"),
            [("330302199602052737", 1.0)]
        );
        assert_eq!(
            found("lower x ok 11010519491231002x"),
            [("11010519491231002x", 1.0)]
        );
    }

    #[test]
    fn region_outside_table_scores_lower() {
        // 110199 is not in the table, province 11 is; check digit recomputed.
        let r = CnResidentIdRecognizer::new();
        let mut id = *b"11019919491231002?";
        let sum: u32 = id[..17]
            .iter()
            .zip(WEIGHTS)
            .map(|(&b, w)| u32::from(b - b'0') * w)
            .sum();
        let c = (12 - sum % 11) % 11;
        id[17] = if c == 10 { b'X' } else { b'0' + c as u8 };
        assert_eq!(r.validate(&id), Some(0.9));
    }

    #[test]
    fn rejects_hard_negatives() {
        assert!(
            found("11010519491231002X9").is_empty(),
            "inside a longer run"
        );
        assert!(found("110105194912310021").is_empty(), "wrong check digit");
        assert!(found("110105194902300027").is_empty(), "30 February");
        assert!(found("990105194912310021").is_empty(), "no province 99");
        assert!(found("110105180012310021").is_empty(), "born 1800");
        assert!(found("order 2024-110105194912310028").is_empty());
    }

    #[test]
    fn future_births_rejected() {
        let r = CnResidentIdRecognizer::new().with_latest_birth_date(2000, 1, 1);
        assert!(r.validate(b"330302199602052737").is_some());
        let r = r.with_latest_birth_date(1996, 2, 4);
        assert!(r.validate(b"330302199602052737").is_none());
        let (y, m, d) = today_utc();
        assert!(y >= 2025 && (1..=12).contains(&m) && (1..=31).contains(&d));
    }

    #[test]
    fn calendar() {
        assert!(is_calendar_date(2000, 2, 29));
        assert!(!is_calendar_date(1900, 2, 29));
        assert!(!is_calendar_date(2023, 13, 1));
        assert!(!is_calendar_date(2023, 4, 31));
    }
}
