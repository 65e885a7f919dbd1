//! URLs with credentials in them: `scheme://user:password@host`.

use std::sync::OnceLock;

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{is_word_byte, Recognizer};

/// Finds `scheme://user:password@host[:port]` (both user and password non-empty); the
/// span runs from the scheme to the end of the host and port.
#[derive(Debug, Default, Clone)]
pub struct UrlCredentialsRecognizer;

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')
}

fn ends_userinfo(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>')
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_' | b'%')
}

impl Recognizer for UrlCredentialsRecognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::UrlCredentials]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        // Built once: a searcher per call would cost more than the search on short texts.
        static SEPARATOR: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
        let separator = SEPARATOR.get_or_init(|| memchr::memmem::Finder::new("://"));
        for sep in separator.find_iter(bytes) {
            let mut start = sep;
            while start > 0 && is_scheme_byte(bytes[start - 1]) {
                start -= 1;
            }
            while start < sep && !bytes[start].is_ascii_alphabetic() {
                start += 1;
            }
            if start == sep || (start > 0 && is_word_byte(bytes[start - 1])) {
                continue;
            }
            let info_start = sep + 3;
            // The userinfo ends at the last `@` before the path (passwords may hold `@`
            // only percent-encoded, but people paste them raw).
            let mut at = None;
            let mut i = info_start;
            while i < bytes.len() && !ends_userinfo(bytes[i]) {
                if bytes[i] == b'@' {
                    at = Some(i);
                }
                i += 1;
            }
            let Some(at) = at else { continue };
            let info = &bytes[info_start..at];
            let Some(colon) = memchr::memchr(b':', info) else {
                continue;
            };
            if colon == 0 || colon + 1 == info.len() {
                continue;
            }
            let mut end = at + 1;
            while end < bytes.len() && is_host_byte(bytes[end]) {
                end += 1;
            }
            while end > at + 1 && matches!(bytes[end - 1], b'.' | b':' | b'-') {
                end -= 1;
            }
            if end == at + 1 {
                continue;
            }
            out.push(Finding::new(PiiKind::UrlCredentials, start..end, 1.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        UrlCredentialsRecognizer.find(text, &mut out);
        out.iter().map(|f| &text[f.span.clone()]).collect()
    }

    #[test]
    fn finds_credentials() {
        assert_eq!(
            found("DATABASE_URL=postgres://admin:s3cr3t@db.internal:5432/app"),
            ["postgres://admin:s3cr3t@db.internal:5432"]
        );
        assert_eq!(found("see https://u:p@x.com."), ["https://u:p@x.com"]);
    }

    #[test]
    fn ignores_urls_without_password() {
        assert!(found("https://example.com/a@b").is_empty());
        assert!(found("ssh://git@github.com/x").is_empty());
        assert!(found("https://:pw@host").is_empty());
        assert!(found("plain text :// nothing").is_empty());
    }
}
