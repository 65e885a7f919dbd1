//! Stop strings for streaming output.
//!
//! Generated text arrives in arbitrary chunks (one token's text at a time). A
//! [`StopMatcher`] emits text as soon as it can no longer be the start of a stop
//! string, holds back text that might be, and reports when a stop string completes;
//! the stop string itself and anything after it are never emitted.
//!
//! The stop that ends generation is the first to *complete* in the text (earliest
//! end; among stops ending at the same place, the one starting earliest). That is
//! what a streaming consumer sees, and it makes the result independent of how the
//! text is split into chunks.

use crate::{Error, Result};

/// What [`StopMatcher::push`] releases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopOutput {
    /// Text that is now safe to show: it cannot be part of a stop string.
    pub emit: String,
    /// Whether a stop string completed; generation should end.
    pub stopped: bool,
}

/// Streaming stop-string detector; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not emitted: it may be the start of a stop string.
    held: String,
    stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stop_strings` (any number, none included). An empty stop
    /// string is an error, as it would match immediately.
    pub fn new(stop_strings: Vec<String>) -> Result<Self> {
        if let Some(index) = stop_strings.iter().position(|s| s.is_empty()) {
            return Err(Error::EmptyStopString { index });
        }
        Ok(StopMatcher {
            stops: stop_strings,
            held: String::new(),
            stopped: false,
        })
    }

    /// The stop strings being watched for.
    pub fn stop_strings(&self) -> &[String] {
        &self.stops
    }

    /// Whether a stop string has completed.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds the next chunk of generated text. Once stopped, further chunks are
    /// ignored and every call reports `stopped` with nothing to emit.
    pub fn push(&mut self, text: &str) -> StopOutput {
        if self.stopped {
            return StopOutput {
                emit: String::new(),
                stopped: true,
            };
        }
        self.held.push_str(text);

        // A complete stop string: the one ending first (then starting first) wins.
        let mut best: Option<(usize, usize)> = None; // (end, start)
        for stop in &self.stops {
            if let Some(start) = self.held.find(stop.as_str()) {
                let key = (start + stop.len(), start);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
        if let Some((_, start)) = best {
            self.held.truncate(start);
            self.stopped = true;
            return StopOutput {
                emit: std::mem::take(&mut self.held),
                stopped: true,
            };
        }

        // Hold back the longest suffix that is a proper prefix of some stop string.
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held.as_bytes()[i..];
                self.stops.iter().any(|s| s.as_bytes().starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(keep_from);
        let emit = std::mem::replace(&mut self.held, rest);
        StopOutput {
            emit,
            stopped: false,
        }
    }

    /// Ends the stream: returns any held-back text (which, the stream being over,
    /// can no longer become a stop string). Returns nothing once stopped.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Reference: the text before the first stop to complete, and whether one did.
    fn reference(text: &str, stops: &[&str]) -> (String, bool) {
        for end in 1..=text.len() {
            if !text.is_char_boundary(end) {
                continue;
            }
            let prefix = &text[..end];
            let best = stops
                .iter()
                .filter(|s| prefix.ends_with(*s))
                .map(|s| end - s.len())
                .min();
            if let Some(start) = best {
                return (text[..start].to_string(), true);
            }
        }
        (text.to_string(), false)
    }

    fn run(stops: &[&str], chunks: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect()).unwrap();
        let mut out = String::new();
        for c in chunks {
            let o = m.push(c);
            out.push_str(&o.emit);
            if o.stopped {
                assert!(m.finish().is_empty());
                return (out, true);
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    fn boundaries(text: &str) -> Vec<usize> {
        (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect()
    }

    const STOP_SETS: &[&[&str]] = &[
        &[],
        &["ab", "abc", "bcd"],
        &["abc", "bcd", "ab"],
        &["bcd", "cd"],
        &["aab"],
        &["é!", "éé", "日本"],
        &["\n\n", "User:"],
        &["abcd", "bc"],
    ];

    const TEXTS: &[&str] = &[
        "",
        "xxabcdyy",
        "xxbcdab",
        "aaab",
        "aaaab and more",
        "no stop here at all",
        "café, ééé! 日本語",
        "caf\u{e9} é!",
        "日日本本",
        "Hello.\nUser: hi\n\nbye",
        "abab",
        "zzabcd",
        "a",
        "ab",
    ];

    #[test]
    fn every_two_way_split() {
        for stops in STOP_SETS {
            for text in TEXTS {
                let want = reference(text, stops);
                assert_eq!(run(stops, &[text]), want, "{text:?} {stops:?} whole");
                for &i in &boundaries(text) {
                    assert_eq!(
                        run(stops, &[&text[..i], &text[i..]]),
                        want,
                        "{text:?} {stops:?} split at {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn char_by_char_and_random_splits() {
        let mut rng = Rng::seeded(1234);
        for stops in STOP_SETS {
            for text in TEXTS {
                let want = reference(text, stops);
                let b = boundaries(text);
                let chars: Vec<&str> = b.windows(2).map(|w| &text[w[0]..w[1]]).collect();
                assert_eq!(run(stops, &chars), want, "{text:?} {stops:?} per char");
                for _ in 0..50 {
                    let mut cuts: Vec<usize> = b
                        .iter()
                        .copied()
                        .filter(|_| rng.next_u64() < u64::MAX / 3)
                        .collect();
                    cuts.insert(0, 0);
                    cuts.push(text.len());
                    let chunks: Vec<&str> = cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect();
                    assert_eq!(run(stops, &chunks), want, "{text:?} {stops:?} {cuts:?}");
                }
            }
        }
    }

    #[test]
    fn random_texts() {
        let alphabet = ["a", "b", "c", "d", "é", "日"];
        let stops: &[&str] = &["ab", "abc", "bcd", "dé", "日日a"];
        let mut rng = Rng::seeded(99);
        for _ in 0..2000 {
            let len = (rng.next_u64() % 12) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(rng.next_u64() % alphabet.len() as u64) as usize])
                .collect();
            let want = reference(&text, stops);
            for &i in &boundaries(&text) {
                assert_eq!(run(stops, &[&text[..i], &text[i..]]), want, "{text:?}");
            }
        }
    }

    #[test]
    fn holds_back_and_releases() {
        let mut m = StopMatcher::new(vec!["</s>".into()]).unwrap();
        assert_eq!(m.push("Hi <").emit, "Hi ");
        assert_eq!(m.push("b").emit, "<b");
        let o = m.push("!</");
        assert_eq!(o.emit, "!");
        assert!(!o.stopped);
        let o = m.push("s> tail");
        assert_eq!(o.emit, "");
        assert!(o.stopped);
        assert!(m.push("more").stopped);
        assert_eq!(m.finish(), "");
    }

    #[test]
    fn finish_flushes_partial() {
        let mut m = StopMatcher::new(vec!["STOP".into()]).unwrap();
        assert_eq!(m.push("abc ST").emit, "abc ");
        assert_eq!(m.finish(), "ST");
    }

    #[test]
    fn empty_stop_rejected() {
        let err = StopMatcher::new(vec!["a".into(), String::new()]).unwrap_err();
        assert!(err.to_string().contains("#1"), "{err}");
        assert!(StopMatcher::new(vec!["a".into(); 10]).is_ok());
    }
}
