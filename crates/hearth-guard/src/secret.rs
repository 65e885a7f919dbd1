//! API keys, access tokens and passwords.
//!
//! Two kinds of evidence: a vendor prefix with a token of the vendor's shape (`sk-`,
//! `sk-proj-`, `ghp_`, `xoxb-`, `AKIA`...), and a value assigned to a secret-sounding
//! name (`password=...`, `"api_key": "..."`) that has enough entropy. Random-looking
//! strings with neither are left alone: on their own they are as often hashes, ids and
//! base64 data as secrets.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{entropy_bits_per_byte, is_word_byte, Recognizer};

/// A vendor prefix and the shape of the token body after it.
struct Prefix {
    prefix: &'static str,
    min_body: usize,
    max_body: usize,
    /// Body is upper-case letters and digits only (AWS key ids).
    upper_alnum: bool,
}

const fn prefix(prefix: &'static str, min_body: usize, max_body: usize) -> Prefix {
    Prefix {
        prefix,
        min_body,
        max_body,
        upper_alnum: false,
    }
}

/// Longer prefixes first: the automaton is leftmost-first.
const PREFIXES: &[Prefix] = &[
    prefix("sk-proj-", 20, 200), // OpenAI project keys
    prefix("sk-ant-", 20, 200),  // Anthropic
    prefix("sk_live_", 20, 120), // Stripe
    prefix("sk_test_", 20, 120),
    prefix("rk_live_", 20, 120),
    prefix("github_pat_", 20, 120),
    prefix("sk-", 20, 200), // OpenAI and compatibles
    prefix("ghp_", 30, 60), // GitHub tokens
    prefix("gho_", 30, 60),
    prefix("ghu_", 30, 60),
    prefix("ghs_", 30, 60),
    prefix("ghr_", 30, 60),
    prefix("glpat-", 20, 60), // GitLab
    prefix("xoxb-", 10, 200), // Slack
    prefix("xoxp-", 10, 200),
    prefix("xoxa-", 10, 200),
    prefix("xoxr-", 10, 200),
    prefix("xoxs-", 10, 200),
    prefix("hf_", 30, 60),  // Hugging Face
    prefix("AIza", 35, 35), // Google API keys
    Prefix {
        prefix: "AKIA",
        min_body: 16,
        max_body: 16,
        upper_alnum: true,
    }, // AWS key ids
    Prefix {
        prefix: "ASIA",
        min_body: 16,
        max_body: 16,
        upper_alnum: true,
    },
];

/// Names whose assigned value is a secret.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "access_token",
    "auth_token",
    "token",
    "client_secret",
    "private_key",
    "密码",
    "口令",
];

/// Minimum entropy (bits per byte) of an assigned value for it to count as a secret.
const MIN_ASSIGNED_ENTROPY: f32 = 3.0;

/// Finds secrets by vendor prefix (score 0.95, or 0.9 for AWS key ids, lower when the
/// body is repetitive) and by assignment to a secret name (score 0.75).
#[derive(Debug, Clone)]
pub struct SecretRecognizer {
    /// Vendor prefixes (patterns `0..PREFIXES.len()`, matched case-insensitively and
    /// checked exactly afterwards) then secret names: one pass over the text.
    words: AhoCorasick,
}

impl Default for SecretRecognizer {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretRecognizer {
    /// The recognizer with its prefix and name automaton built.
    pub fn new() -> Self {
        let words = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            // A full DFA: the names start with common letters, so the prefilter rarely
            // skips far and the automaton's speed decides.
            .kind(Some(AhoCorasickKind::DFA))
            .build(
                PREFIXES
                    .iter()
                    .map(|p| p.prefix)
                    .chain(SECRET_NAMES.iter().copied()),
            )
            .expect("built-in word list compiles");
        SecretRecognizer { words }
    }

    /// A secret after the vendor prefix `rule` matched at `start..body_start`.
    fn prefixed(rule: &Prefix, bytes: &[u8], start: usize, body_start: usize) -> Option<Finding> {
        if &bytes[start..body_start] != rule.prefix.as_bytes() {
            return None; // matched only case-insensitively
        }
        if start > 0 && is_word_byte(bytes[start - 1]) {
            return None;
        }
        let body_ok = |b: u8| {
            if rule.upper_alnum {
                b.is_ascii_uppercase() || b.is_ascii_digit()
            } else {
                b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
            }
        };
        let mut end = body_start;
        while end < bytes.len() && body_ok(bytes[end]) {
            end += 1;
        }
        let body = &bytes[body_start..end];
        let glued = end < bytes.len() && is_word_byte(bytes[end]);
        if glued || body.len() < rule.min_body || body.len() > rule.max_body {
            return None;
        }
        let entropy = entropy_bits_per_byte(body);
        let score = if rule.upper_alnum {
            0.9
        } else if entropy >= 3.5 {
            0.95
        } else if entropy >= 2.5 {
            0.6
        } else {
            return None; // `sk-aaaaaaaaaaaaaaaaaaaa`: a placeholder, not a key
        };
        Some(Finding::new(PiiKind::Secret, start..end, score))
    }

    /// The value assigned to the secret name matched at `start..name_end`, if it looks
    /// like a secret.
    fn assigned(bytes: &[u8], start: usize, name_end: usize) -> Option<Finding> {
        let ascii_name = bytes[start].is_ascii();
        if ascii_name && start > 0 && bytes[start - 1].is_ascii_alphabetic() {
            return None;
        }
        // `password_hash`, `tokens`: a longer name is not this name.
        if ascii_name && name_end < bytes.len() && is_word_byte(bytes[name_end]) {
            return None;
        }
        // name, optional closing quote, spaces, `=` / `:` / `：`, spaces, optional quote
        let skip_quotes = |mut i: usize| {
            while i < bytes.len() && matches!(bytes[i], b'"' | b'\'' | b' ' | b'\t') {
                i += 1;
            }
            i
        };
        let mut i = skip_quotes(name_end);
        if bytes[i..].starts_with("：".as_bytes()) {
            i += "：".len();
        } else if i < bytes.len() && matches!(bytes[i], b'=' | b':') {
            i += 1;
        } else {
            return None;
        }
        let value_start = skip_quotes(i);
        let mut end = value_start;
        while end < bytes.len()
            && bytes[end].is_ascii_graphic()
            && !matches!(bytes[end], b'"' | b'\'' | b',' | b';')
        {
            end += 1;
        }
        let value = &bytes[value_start..end];
        let secret = value.len() >= 8 && entropy_bits_per_byte(value) >= MIN_ASSIGNED_ENTROPY;
        secret.then(|| Finding::new(PiiKind::Secret, value_start..end, 0.75))
    }
}

impl Recognizer for SecretRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Secret]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        let mut prefixed_starts = Vec::new();
        let mut assigned = Vec::new();
        for m in self.words.find_iter(bytes) {
            let index = m.pattern().as_usize();
            if let Some(rule) = PREFIXES.get(index) {
                if let Some(f) = Self::prefixed(rule, bytes, m.start(), m.end()) {
                    prefixed_starts.push(f.span.start);
                    out.push(f);
                }
            } else if let Some(f) = Self::assigned(bytes, m.start(), m.end()) {
                assigned.push(f);
            }
        }
        // `api_key=sk-...` is one secret, found both ways: keep the prefixed finding.
        out.extend(
            assigned
                .into_iter()
                .filter(|f| !prefixed_starts.contains(&f.span.start)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        SecretRecognizer::new().find(text, &mut out);
        out.iter().map(|f| &text[f.span.clone()]).collect()
    }

    #[test]
    fn prefixed_keys() {
        let key = "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI";
        assert_eq!(found(&format!("OPENAI_API_KEY={key}")), [key]);
        assert_eq!(
            found("ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 leaked"),
            ["ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"]
        );
        assert_eq!(found("aws AKIAIOSFODNN7EXAMPLE."), ["AKIAIOSFODNN7EXAMPLE"]);
        assert_eq!(
            found("xoxb-123456789012-abcdefGHIJ"),
            ["xoxb-123456789012-abcdefGHIJ"]
        );
    }

    #[test]
    fn assigned_secrets() {
        assert_eq!(found(r#"{"password": "Tr0ub4dor&3xK"}"#), ["Tr0ub4dor&3xK"]);
        assert_eq!(found("DB_PASSWORD=q8#Lm2!vZp"), ["q8#Lm2!vZp"]);
        assert_eq!(found("密码：Xy7#pQ2m9"), ["Xy7#pQ2m9"]);
    }

    #[test]
    fn negatives() {
        assert!(found("task-management is fun").is_empty());
        assert!(found("sk-aaaaaaaaaaaaaaaaaaaaaaaa").is_empty());
        assert!(found("AKIA1234").is_empty(), "too short");
        assert!(found("password: aaaaaaaaaa").is_empty(), "low entropy");
        assert!(found("password_hash = 5f4dcc3b").is_empty());
        assert!(found("forgot your password? click").is_empty());
        assert!(found("xAKIAIOSFODNN7EXAMPLE").is_empty());
    }
}
