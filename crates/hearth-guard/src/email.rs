//! E-mail addresses: found from each `@` outwards, then validated (ASCII only).

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{is_word_byte, Recognizer};

/// Finds `local@domain.tld` addresses with a dotted domain and an alphabetic TLD.
#[derive(Debug, Default, Clone)]
pub struct EmailRecognizer;

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// The end of a valid domain starting at `bytes[start..]`, or `None`.
fn domain_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    while end < bytes.len() && is_domain_byte(bytes[end]) {
        end += 1;
    }
    // A sentence may end right after the address: drop trailing dots and dashes.
    while end > start && matches!(bytes[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &bytes[start..end];
    let mut labels = domain.split(|&b| b == b'.');
    let count = domain.iter().filter(|&&b| b == b'.').count() + 1;
    if count < 2 || domain.len() > 253 {
        return None;
    }
    for (i, label) in labels.by_ref().enumerate() {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return None;
        }
        if i == count - 1 && (label.len() < 2 || !label.iter().all(u8::is_ascii_alphabetic)) {
            return None;
        }
    }
    Some(end)
}

impl Recognizer for EmailRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Email]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        let mut resume = 0;
        for at in memchr::memchr_iter(b'@', bytes) {
            if at < resume {
                continue;
            }
            let mut start = at;
            while start > 0 && is_local_byte(bytes[start - 1]) && at - start < 64 {
                start -= 1;
            }
            while start < at && matches!(bytes[start], b'.' | b'\'') {
                start += 1;
            }
            if start == at || bytes[at - 1] == b'.' {
                continue;
            }
            if start > 0 && is_word_byte(bytes[start - 1]) {
                continue; // local part longer than 64 bytes: not an address
            }
            let Some(end) = domain_end(bytes, at + 1) else {
                continue;
            };
            if end < bytes.len() && (is_word_byte(bytes[end]) || bytes[end] == b'@') {
                continue;
            }
            out.push(Finding::new(PiiKind::Email, start..end, 1.0));
            resume = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        EmailRecognizer.find(text, &mut out);
        out.iter().map(|f| &text[f.span.clone()]).collect()
    }

    #[test]
    fn finds_addresses_in_sentences() {
        assert_eq!(
            found("Mail jane.doe+x@example.co.uk."),
            ["jane.doe+x@example.co.uk"]
        );
        assert_eq!(found("邮箱：wang_li@qq.com，谢谢"), ["wang_li@qq.com"]);
        assert_eq!(found("a@b.io and c.d@e-f.org"), ["a@b.io", "c.d@e-f.org"]);
    }

    #[test]
    fn rejects_non_addresses() {
        assert!(found("@handle on twitter").is_empty());
        assert!(found("user@localhost").is_empty());
        assert!(found("x@y.c0m").is_empty());
        assert!(found("meet @ 5pm").is_empty());
        assert!(found("a.@b.com").is_empty());
        assert!(found("x@-bad.com").is_empty());
    }
}
