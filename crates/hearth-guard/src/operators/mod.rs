//! What to do with a finding: mask it, replace it with a typed placeholder, a keyed hash
//! or a reversible pseudonym; and the [`Anonymizer`] that applies one operator per kind.

mod vault;

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use vault::Vault;

use crate::error::{Error, Result};
use crate::finding::{Finding, PiiKind};

/// How a finding is replaced.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operator {
    /// Replace each character with `ch` (`keep_length`), or the whole value with
    /// `ch` repeated eight times.
    Mask {
        /// The masking character.
        ch: char,
        /// Keep the value's length in characters.
        keep_length: bool,
    },
    /// A typed placeholder numbered per distinct value within one text: `<PHONE_1>`.
    Placeholder,
    /// `<KIND:hex>`: the first `hex_len` hex digits of HMAC-SHA256(key, kind ‖ value).
    /// The same value under the same key always gives the same hash.
    Hash {
        /// The HMAC key.
        key: Vec<u8>,
        /// How many hex digits to keep (1–64).
        hex_len: usize,
    },
    /// A pseudonym from the [`Vault`], which keeps the original encrypted so that
    /// [`Vault::reidentify`] can restore it.
    Pseudonymize,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operator::Mask { ch, keep_length } => f
                .debug_struct("Mask")
                .field("ch", ch)
                .field("keep_length", keep_length)
                .finish(),
            Operator::Placeholder => f.write_str("Placeholder"),
            // The key stays out of logs.
            Operator::Hash { hex_len, .. } => f
                .debug_struct("Hash")
                .field("hex_len", hex_len)
                .finish_non_exhaustive(),
            Operator::Pseudonymize => f.write_str("Pseudonymize"),
        }
    }
}

/// Applies an operator per kind (a default for the rest) to a text and its findings.
#[derive(Debug, Clone)]
pub struct Anonymizer {
    default: Operator,
    per_kind: HashMap<PiiKind, Operator>,
}

impl Default for Anonymizer {
    /// Placeholders for every kind.
    fn default() -> Self {
        Anonymizer::new(Operator::Placeholder)
    }
}

impl Anonymizer {
    /// An anonymizer applying `default` to every kind.
    pub fn new(default: Operator) -> Self {
        Anonymizer {
            default,
            per_kind: HashMap::new(),
        }
    }

    /// The same anonymizer, applying `operator` to `kind`.
    pub fn with(mut self, kind: PiiKind, operator: Operator) -> Self {
        self.per_kind.insert(kind, operator);
        self
    }

    /// The operator used for `kind`.
    pub fn operator(&self, kind: PiiKind) -> &Operator {
        self.per_kind.get(&kind).unwrap_or(&self.default)
    }

    /// `text` with every finding replaced. Findings must not overlap (as the
    /// [`Scanner`](crate::Scanner) returns them); `vault` is needed only when an operator
    /// is [`Operator::Pseudonymize`].
    pub fn anonymize(
        &self,
        text: &str,
        findings: &[Finding],
        mut vault: Option<&mut Vault>,
    ) -> Result<String> {
        let mut order: Vec<&Finding> = findings.iter().collect();
        order.sort_by_key(|f| f.span.start);
        let mut out = String::with_capacity(text.len());
        let mut numbers: HashMap<(PiiKind, &str), usize> = HashMap::new();
        let mut counts: HashMap<PiiKind, usize> = HashMap::new();
        let mut copied = 0;
        for f in order {
            let bad_span = || Error::BadSpan {
                start: f.span.start,
                end: f.span.end,
                len: text.len(),
            };
            if f.span.start < copied {
                return Err(bad_span());
            }
            let value = text.get(f.span.clone()).ok_or_else(bad_span)?;
            out.push_str(&text[copied..f.span.start]);
            match self.operator(f.kind) {
                Operator::Mask { ch, keep_length } => {
                    let n = if *keep_length {
                        value.chars().count()
                    } else {
                        8
                    };
                    out.extend(std::iter::repeat_n(*ch, n));
                }
                Operator::Placeholder => {
                    let next = counts.entry(f.kind).or_insert(0);
                    let n = *numbers.entry((f.kind, value)).or_insert_with(|| {
                        *next += 1;
                        *next
                    });
                    out.push_str(&format!("<{}_{n}>", f.kind.label()));
                }
                Operator::Hash { key, hex_len } => {
                    out.push_str(&format!(
                        "<{}:{}>",
                        f.kind.label(),
                        keyed_hash_hex(key, f.kind, value, *hex_len)
                    ));
                }
                Operator::Pseudonymize => {
                    let vault = vault.as_deref_mut().ok_or(Error::NoVault {
                        kind: f.kind.label(),
                    })?;
                    out.push_str(&vault.pseudonym(f.kind, value)?);
                }
            }
            copied = f.span.end;
        }
        out.push_str(&text[copied..]);
        Ok(out)
    }
}

/// The first `hex_len` (clamped to 1..=64) hex digits of HMAC-SHA256(key, label ‖ 0 ‖ value).
pub(crate) fn keyed_hash_hex(key: &[u8], kind: PiiKind, value: &str, hex_len: usize) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(kind.label().as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(hex_len.clamp(1, 64));
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;

    fn redact(anonymizer: &Anonymizer, text: &str) -> String {
        let findings = Scanner::new().scan(text);
        anonymizer
            .anonymize(text, &findings, None)
            .unwrap_or_default()
    }

    #[test]
    fn placeholders_number_distinct_values() {
        let text = "a@x.com, b@x.com, a@x.com; call 13812345678 or 13812345678";
        assert_eq!(
            redact(&Anonymizer::default(), text),
            "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>; call <PHONE_1> or <PHONE_1>"
        );
    }

    #[test]
    fn mask_keeps_length_or_fixed() {
        let keep = Anonymizer::new(Operator::Mask {
            ch: '*',
            keep_length: true,
        });
        assert_eq!(redact(&keep, "ip 10.0.0.1!"), "ip ********!");
        let fixed = Anonymizer::new(Operator::Mask {
            ch: '#',
            keep_length: false,
        });
        assert_eq!(redact(&fixed, "ip 10.0.0.1!"), "ip ########!");
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let h = |key: &[u8]| {
            Anonymizer::new(Operator::Hash {
                key: key.to_vec(),
                hex_len: 12,
            })
        };
        let a = redact(&h(b"k1"), "a@x.com");
        assert_eq!(a, redact(&h(b"k1"), "a@x.com"));
        assert_ne!(a, redact(&h(b"k2"), "a@x.com"));
        assert!(
            a.starts_with("<EMAIL:") && a.len() == "<EMAIL:>".len() + 12,
            "{a}"
        );
    }

    #[test]
    fn per_kind_operator_and_errors() {
        let anon = Anonymizer::default().with(
            PiiKind::Ipv4,
            Operator::Mask {
                ch: 'x',
                keep_length: true,
            },
        );
        assert_eq!(redact(&anon, "a@x.com 1.2.3.4"), "<EMAIL_1> xxxxxxx");
        let text = "a@x.com";
        let findings = Scanner::new().scan(text);
        let p = Anonymizer::new(Operator::Pseudonymize);
        assert!(matches!(
            p.anonymize(text, &findings, None),
            Err(Error::NoVault { .. })
        ));
        let bad = [Finding::new(PiiKind::Email, 3..99, 1.0)];
        assert!(matches!(
            Anonymizer::default().anonymize(text, &bad, None),
            Err(Error::BadSpan { .. })
        ));
    }
}
