//! IPv4 and IPv6 addresses.

use std::net::Ipv6Addr;

use regex::bytes::Regex;

use crate::finding::{Finding, PiiKind};
use crate::recognizer::{is_word_byte, stands_alone, Recognizer};

/// Finds dotted-quad IPv4 addresses with octets 0–255 and no leading zeros. Score 0.9
/// (version numbers such as `1.2.3.4` look the same; a `v` before them rules them out).
#[derive(Debug, Clone)]
pub struct Ipv4Recognizer {
    pattern: Regex,
}

impl Default for Ipv4Recognizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Ipv4Recognizer {
    /// The recognizer with its pattern compiled.
    pub fn new() -> Self {
        Ipv4Recognizer {
            pattern: Regex::new(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
                .expect("built-in pattern compiles"),
        }
    }
}

fn octet_valid(octet: &[u8]) -> bool {
    let value = octet
        .iter()
        .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    value <= 255 && (octet.len() == 1 || octet[0] != b'0')
}

impl Recognizer for Ipv4Recognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Ipv4]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        for m in self.pattern.find_iter(bytes) {
            let (start, end) = (m.start(), m.end());
            // `1.2.3.4.5` and `.1.2.3.4` are not addresses.
            let dotted_before = start > 0 && bytes[start - 1] == b'.';
            if dotted_before || !stands_alone(bytes, start, end) {
                continue;
            }
            if m.as_bytes().split(|&b| b == b'.').all(octet_valid) {
                out.push(Finding::new(PiiKind::Ipv4, start..end, 0.9));
            }
        }
    }
}

/// Finds IPv6 addresses that `std::net::Ipv6Addr` parses, with at least two non-empty
/// groups (so `::1` and `::` are left alone). Score 1.0 for the full eight groups or an
/// embedded IPv4, 0.8 for compressed forms (`fe80::1`).
#[derive(Debug, Default, Clone)]
pub struct Ipv6Recognizer;

fn is_v6_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

impl Recognizer for Ipv6Recognizer {
    fn kinds(&self) -> &'static [PiiKind] {
        &[PiiKind::Ipv6]
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let bytes = text.as_bytes();
        let mut resume = 0;
        for colon in memchr::memchr_iter(b':', bytes) {
            if colon < resume {
                continue;
            }
            let mut start = colon;
            while start > 0 && is_v6_byte(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = colon;
            while end < bytes.len() && is_v6_byte(bytes[end]) {
                end += 1;
            }
            resume = end;
            while start < end && bytes[start] == b'.' {
                start += 1;
            }
            while end > start && bytes[end - 1] == b'.' {
                end -= 1;
            }
            if end >= start + 2 && bytes[end - 1] == b':' && bytes[end - 2] != b':' {
                end -= 1; // a colon ending a clause, not a `::`
            }
            let glued = (start > 0 && is_word_byte(bytes[start - 1]))
                || (end < bytes.len() && is_word_byte(bytes[end]));
            let candidate = &text[start..end];
            if glued || candidate.len() < 6 || candidate.bytes().filter(|&b| b == b':').count() < 2
            {
                continue;
            }
            if candidate.parse::<Ipv6Addr>().is_err() {
                continue;
            }
            let groups = candidate.split(':').filter(|g| !g.is_empty()).count();
            if groups < 2 {
                continue;
            }
            let full = !candidate.contains("::") || candidate.contains('.');
            out.push(Finding::new(
                PiiKind::Ipv6,
                start..end,
                if full { 1.0 } else { 0.8 },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(r: &dyn Recognizer, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        r.find(text, &mut out);
        out.iter()
            .map(|f| text[f.span.clone()].to_string())
            .collect()
    }

    #[test]
    fn ipv4() {
        let r = Ipv4Recognizer::new();
        assert_eq!(found(&r, "host 192.168.1.20."), ["192.168.1.20"]);
        assert_eq!(found(&r, "服务器10.0.0.1，"), ["10.0.0.1"]);
        assert!(found(&r, "bad 192.168.1.256").is_empty());
        assert!(found(&r, "1.2.3.4.5").is_empty());
        assert!(found(&r, "v1.2.3.4").is_empty());
        assert!(found(&r, "010.1.1.1").is_empty());
        assert!(found(&r, "2023.10.12.1").is_empty());
    }

    #[test]
    fn ipv6() {
        let r = Ipv6Recognizer;
        assert_eq!(
            found(&r, "addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334."),
            ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]
        );
        assert_eq!(
            found(&r, "link fe80::1ff:fe23:4567:890a, ok"),
            ["fe80::1ff:fe23:4567:890a"]
        );
        assert_eq!(
            found(&r, "mapped ::ffff:192.0.2.128"),
            ["::ffff:192.0.2.128"]
        );
        assert!(found(&r, "at 12:30:45 today").is_empty());
        assert!(found(&r, "mac 00:1a:2b:3c:4d:5e").is_empty());
        assert!(found(&r, "std::vec::Vec").is_empty());
        assert!(found(&r, "loopback ::1").is_empty());
    }
}
