//! The [`Scanner`]: every recognizer over a text, overlaps resolved.

use crate::address::AddressRecognizer;
use crate::card::CardRecognizer;
use crate::cn_id::CnResidentIdRecognizer;
use crate::email::EmailRecognizer;
use crate::finding::{Finding, PiiKind};
use crate::iban::IbanRecognizer;
use crate::ip::{Ipv4Recognizer, Ipv6Recognizer};
use crate::person::PersonRecognizer;
use crate::phone::PhoneRecognizer;
use crate::recognizer::Recognizer;
use crate::secret::SecretRecognizer;
use crate::url_cred::UrlCredentialsRecognizer;

/// Runs a set of recognizers over a text and returns non-overlapping findings in text
/// order: of overlapping candidates the longest wins, then the highest scored. Findings
/// scored below the threshold (default 0.5) are dropped before overlaps are resolved.
pub struct Scanner {
    recognizers: Vec<Box<dyn Recognizer>>,
    min_score: f32,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("recognizers", &self.recognizers.len())
            .field("min_score", &self.min_score)
            .finish()
    }
}

impl Scanner {
    /// A scanner with the recognizers of [`PiiKind::DEFAULT`] (every kind but names and
    /// addresses) and threshold 0.5.
    pub fn new() -> Self {
        Self::with_kinds(&PiiKind::DEFAULT)
    }

    /// A scanner with the built-in recognizers that report one of `kinds` (use
    /// [`PiiKind::ALL`] for names and addresses too) and threshold 0.5.
    pub fn with_kinds(kinds: &[PiiKind]) -> Self {
        Scanner {
            recognizers: vec![
                Box::new(UrlCredentialsRecognizer),
                Box::new(EmailRecognizer),
                Box::new(SecretRecognizer::new()),
                Box::new(CnResidentIdRecognizer::new()),
                Box::new(CardRecognizer::new()),
                Box::new(IbanRecognizer::new()),
                Box::new(PhoneRecognizer::new()),
                Box::new(Ipv4Recognizer::new()),
                Box::new(Ipv6Recognizer),
                Box::new(PersonRecognizer::new()),
                Box::new(AddressRecognizer::new()),
            ],
            min_score: 0.5,
        }
        .only(kinds)
    }

    /// A scanner over the given recognizers only.
    pub fn with_recognizers(recognizers: Vec<Box<dyn Recognizer>>) -> Self {
        Scanner {
            recognizers,
            min_score: 0.5,
        }
    }

    /// Keeps only the recognizers that can report one of `kinds`.
    pub fn only(mut self, kinds: &[PiiKind]) -> Self {
        self.recognizers
            .retain(|r| r.kinds().iter().any(|k| kinds.contains(k)));
        self
    }

    /// Sets the score below which findings are dropped.
    pub fn with_min_score(mut self, min_score: f32) -> Self {
        self.min_score = min_score;
        self
    }

    /// Every finding in `text`, non-overlapping, in text order.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut candidates = Vec::new();
        for r in &self.recognizers {
            r.find(text, &mut candidates);
        }
        candidates.retain(|f| f.score >= self.min_score);
        resolve_overlaps(candidates)
    }
}

/// Keeps, of overlapping findings, the longest, then the highest scored, then the
/// earliest; returns them sorted by start.
pub(crate) fn resolve_overlaps(mut candidates: Vec<Finding>) -> Vec<Finding> {
    if candidates.len() <= 1 {
        return candidates;
    }
    candidates.sort_by(|a, b| {
        let len = |f: &Finding| f.span.end - f.span.start;
        len(b)
            .cmp(&len(a))
            .then(b.score.total_cmp(&a.score))
            .then(a.span.start.cmp(&b.span.start))
    });
    // Kept spans by start; they never overlap, so only the neighbours of a candidate
    // can overlap it.
    let mut kept: std::collections::BTreeMap<usize, Finding> = std::collections::BTreeMap::new();
    for c in candidates {
        let before = kept.range(..=c.span.start).next_back();
        let after = kept.range(c.span.start..).next();
        let overlaps = before.is_some_and(|(_, k)| k.span.end > c.span.start)
            || after.is_some_and(|(&s, _)| s < c.span.end);
        if !overlaps {
            kept.insert(c.span.start, c);
        }
    }
    kept.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        Scanner::new()
            .scan(text)
            .into_iter()
            .map(|f| (f.kind, &text[f.span]))
            .collect()
    }

    #[test]
    fn mixed_text() {
        let text = "Mail a@b.com or call +1-415-555-2671; card 4111 1111 1111 1111, \
                    身份证11010519491231002X, ip 10.0.0.1.";
        assert_eq!(
            kinds(text),
            [
                (PiiKind::Email, "a@b.com"),
                (PiiKind::Phone, "+1-415-555-2671"),
                (PiiKind::CreditCard, "4111 1111 1111 1111"),
                (PiiKind::CnResidentId, "11010519491231002X"),
                (PiiKind::Ipv4, "10.0.0.1"),
            ]
        );
    }

    #[test]
    fn url_credentials_beat_email_inside() {
        let text = "postgres://bob:pw@db.example.com/x";
        assert_eq!(
            kinds(text),
            [(PiiKind::UrlCredentials, "postgres://bob:pw@db.example.com")]
        );
    }

    #[test]
    fn overlap_prefers_longer_then_higher() {
        let f = |k, s: usize, e: usize, sc| Finding::new(k, s..e, sc);
        let out = resolve_overlaps(vec![
            f(PiiKind::Phone, 0, 11, 0.9),
            f(PiiKind::CnResidentId, 0, 18, 1.0),
            f(PiiKind::CreditCard, 0, 18, 0.95),
            f(PiiKind::Ipv4, 20, 28, 0.9),
        ]);
        assert_eq!(
            out,
            [
                f(PiiKind::CnResidentId, 0, 18, 1.0),
                f(PiiKind::Ipv4, 20, 28, 0.9)
            ]
        );
    }

    #[test]
    fn names_and_addresses_are_opt_in() {
        let text = "Ask Danielle Rodriguez at 1224 Diane Rue Suite 757, mail a@b.com";
        assert_eq!(kinds(text), [(PiiKind::Email, "a@b.com")]);
        let all: Vec<_> = Scanner::with_kinds(&PiiKind::ALL)
            .scan(text)
            .into_iter()
            .map(|f| (f.kind, &text[f.span]))
            .collect();
        assert_eq!(
            all,
            [
                (PiiKind::Person, "Danielle Rodriguez"),
                (PiiKind::Address, "1224 Diane Rue Suite 757"),
                (PiiKind::Email, "a@b.com"),
            ]
        );
    }

    #[test]
    fn parse_kind_lists() {
        assert_eq!(
            PiiKind::parse_list("all").unwrap().len(),
            PiiKind::ALL.len()
        );
        assert_eq!(
            PiiKind::parse_list("default, person").unwrap().len(),
            PiiKind::DEFAULT.len() + 1
        );
        assert_eq!(
            PiiKind::parse_list("email,EMAIL").unwrap(),
            [PiiKind::Email]
        );
        assert!(PiiKind::parse_list("names")
            .unwrap_err()
            .contains("`names`"));
        assert!(PiiKind::parse_list("").is_err());
    }

    #[test]
    fn only_filters_recognizers() {
        let s = Scanner::new().only(&[PiiKind::Email]);
        assert_eq!(s.scan("a@b.com 10.0.0.1").len(), 1);
    }
}
