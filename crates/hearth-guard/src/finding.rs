//! What a recognizer reports: the kind of data, where it is, how sure we are.

use std::fmt;
use std::ops::Range;

/// The kinds of personal data and secrets this crate detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PiiKind {
    /// An e-mail address (`local@domain.tld`, ASCII).
    Email,
    /// A phone number: mainland China mobile or landline, E.164, North American, or a
    /// common European national format.
    Phone,
    /// A mainland China resident identity card number (18 characters, checked).
    CnResidentId,
    /// A payment card number (Luhn, known issuer prefix and length).
    CreditCard,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// An international bank account number (country length and mod-97 checked).
    Iban,
    /// An API key, access token or password: known prefixes, or a high-entropy value
    /// assigned to a secret-sounding name.
    Secret,
    /// A URL that carries a user name and password (`scheme://user:pass@host`).
    UrlCredentials,
    /// A person's name: English (given-name dictionary, capitalisation, titles and cues)
    /// or Chinese (surname list and a cue such as 我叫 or 先生). Not in the default set.
    Person,
    /// A street address: US style (number, street, USPS suffix, unit, city, state, ZIP)
    /// or mainland Chinese (province … 路/街 … 号). Not in the default set.
    Address,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 11] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CnResidentId,
        PiiKind::CreditCard,
        PiiKind::Ipv4,
        PiiKind::Ipv6,
        PiiKind::Iban,
        PiiKind::Secret,
        PiiKind::UrlCredentials,
        PiiKind::Person,
        PiiKind::Address,
    ];

    /// The kinds a [`Scanner::new`](crate::Scanner::new) looks for: every kind found by
    /// a checksum or a strict pattern. Names and addresses, found by dictionaries and
    /// context with lower precision, are opt-in ([`Scanner::with_kinds`](crate::Scanner::with_kinds)).
    pub const DEFAULT: [PiiKind; 9] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CnResidentId,
        PiiKind::CreditCard,
        PiiKind::Ipv4,
        PiiKind::Ipv6,
        PiiKind::Iban,
        PiiKind::Secret,
        PiiKind::UrlCredentials,
    ];

    /// The upper-case label used in placeholders and JSON (`EMAIL`, `CN_RESIDENT_ID`, ...).
    pub fn label(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::CnResidentId => "CN_RESIDENT_ID",
            PiiKind::CreditCard => "CREDIT_CARD",
            PiiKind::Ipv4 => "IPV4",
            PiiKind::Ipv6 => "IPV6",
            PiiKind::Iban => "IBAN",
            PiiKind::Secret => "SECRET",
            PiiKind::UrlCredentials => "URL_CREDENTIALS",
            PiiKind::Person => "PERSON",
            PiiKind::Address => "ADDRESS",
        }
    }

    /// The kind whose [`label`](Self::label) is `label` (case-insensitive).
    pub fn from_label(label: &str) -> Option<PiiKind> {
        PiiKind::ALL
            .into_iter()
            .find(|k| k.label().eq_ignore_ascii_case(label))
    }

    /// Parses a comma-separated selection: labels (`EMAIL,PERSON`), `default` (the
    /// [`DEFAULT`](Self::DEFAULT) kinds) and `all`, in any mix. The error names the
    /// first word that is none of these.
    pub fn parse_list(list: &str) -> Result<Vec<PiiKind>, String> {
        let mut kinds = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let one;
            let more: &[PiiKind] = match word.to_ascii_lowercase().as_str() {
                "all" => &PiiKind::ALL,
                "default" => &PiiKind::DEFAULT,
                _ => {
                    one = PiiKind::from_label(word).ok_or_else(|| {
                        let labels: Vec<&str> = PiiKind::ALL.iter().map(|k| k.label()).collect();
                        format!(
                            "`{word}` is not a PII kind: use `all`, `default` or some of {}",
                            labels.join(", ")
                        )
                    })?;
                    std::slice::from_ref(&one)
                }
            };
            for k in more {
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
        }
        if kinds.is_empty() {
            return Err("no PII kind selected".into());
        }
        Ok(kinds)
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One detected item: its kind, its byte span in the scanned text, and a score in 0..=1.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was found.
    pub kind: PiiKind,
    /// Byte offsets into the scanned text (always on character boundaries).
    pub span: Range<usize>,
    /// Confidence in 0..=1: 1.0 for checksummed matches, lower for weaker evidence.
    pub score: f32,
}

impl Finding {
    /// A finding of `kind` over `span` with `score`.
    pub fn new(kind: PiiKind, span: Range<usize>, score: f32) -> Finding {
        Finding { kind, span, score }
    }

    /// The text the finding covers, or `None` if the span does not fit `text`.
    pub fn text<'t>(&self, text: &'t str) -> Option<&'t str> {
        text.get(self.span.clone())
    }
}
