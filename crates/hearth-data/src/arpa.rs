//! The ARPA text format of backoff n-gram models (SRILM, KenLM): reading into a
//! [`BackoffModel`] and writing one out.
//!
//! ```text
//! \data\
//! ngram 1=3
//! ngram 2=2
//!
//! \1-grams:
//! -1.0  <s>  -0.3          log10 p, words (tab or space separated), optional log10 backoff
//! ...
//! \end\
//! ```
//!
//! Every error names the file and line. Unigrams define the vocabulary (ids in file
//! order); a higher-order n-gram naming a word missing from the unigrams is an error.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ngram::{BackoffModel, NgramEntry, MAX_ORDER};

fn bad(path: &Path, line: usize, what: impl std::fmt::Display) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        what: format!("line {line}: {what}"),
    }
}

/// Parses ARPA `text` read from `path` (named in errors).
pub fn parse_arpa(text: &str, path: &Path) -> Result<BackoffModel> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut counts: Vec<usize> = Vec::new();
    let mut saw_data = false;
    let mut section: Option<(usize, usize)> = None;
    for (no, l) in lines.by_ref() {
        if l.is_empty() {
            continue;
        }
        if l == "\\data\\" {
            saw_data = true;
        } else if let Some(rest) = l.strip_prefix("ngram ") {
            let (n, c) = rest
                .split_once('=')
                .ok_or_else(|| bad(path, no, format!("expected `ngram N=COUNT`, found `{l}`")))?;
            let n: usize = n.trim().parse().map_err(|_| bad(path, no, "bad order"))?;
            let c: usize = c.trim().parse().map_err(|_| bad(path, no, "bad count"))?;
            if n != counts.len() + 1 || n > MAX_ORDER {
                return Err(bad(path, no, format!("unexpected order {n}")));
            }
            counts.push(c);
        } else if saw_data {
            section = Some((
                no,
                section_order(l).ok_or_else(|| bad(path, no, "expected `\\1-grams:`"))?,
            ));
            break;
        }
    }
    if !saw_data || counts.is_empty() {
        return Err(bad(
            path,
            1,
            "not an ARPA file: no `\\data\\` header with ngram counts",
        ));
    }
    let mut model = BackoffModel {
        vocab: Vec::new(),
        orders: vec![Vec::new(); counts.len()],
    };
    let mut ids: HashMap<String, u32> = HashMap::new();
    let Some((_, mut n)) = section else {
        return Err(bad(path, text.lines().count(), "no n-gram sections"));
    };
    let mut ended = false;
    for (no, l) in lines {
        if l.is_empty() {
            continue;
        }
        if l == "\\end\\" {
            ended = true;
            break;
        }
        if l.starts_with('\\') {
            n = section_order(l).ok_or_else(|| bad(path, no, format!("unexpected `{l}`")))?;
            if n > counts.len() {
                return Err(bad(
                    path,
                    no,
                    format!("section {n} beyond the header's orders"),
                ));
            }
            continue;
        }
        let mut f = l.split_whitespace();
        let prob: f32 = f
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad(path, no, "expected a log10 probability"))?;
        let words: Vec<&str> = f.by_ref().take(n).collect();
        if words.len() != n {
            return Err(bad(path, no, format!("expected {n} words")));
        }
        let backoff: f32 = match f.next() {
            Some(b) => b
                .parse()
                .map_err(|_| bad(path, no, format!("bad backoff `{b}`")))?,
            None => 0.0,
        };
        if f.next().is_some() {
            return Err(bad(path, no, "extra fields"));
        }
        let mut wids = Vec::with_capacity(n);
        for w in words {
            let id = if n == 1 {
                let next = model.vocab.len() as u32;
                if ids.insert(w.to_string(), next).is_some() {
                    return Err(bad(path, no, format!("unigram `{w}` appears twice")));
                }
                model.vocab.push(w.to_string());
                next
            } else {
                *ids.get(w)
                    .ok_or_else(|| bad(path, no, format!("word `{w}` is not a unigram")))?
            };
            wids.push(id);
        }
        model.orders[n - 1].push(NgramEntry {
            words: wids,
            prob,
            backoff,
        });
    }
    if !ended {
        return Err(bad(path, text.lines().count(), "missing `\\end\\`"));
    }
    for (i, (want, got)) in counts.iter().zip(&model.orders).enumerate() {
        if *want != got.len() {
            return Err(bad(
                path,
                1,
                format!("header says {want} {}-grams, found {}", i + 1, got.len()),
            ));
        }
    }
    Ok(model)
}

fn section_order(l: &str) -> Option<usize> {
    l.strip_prefix('\\')?.strip_suffix("-grams:")?.parse().ok()
}

/// `model` as ARPA text. Floats are written in their shortest exact form, so reading the
/// text back gives the same `f32`s, hence the same scores.
pub fn write_arpa(model: &BackoffModel) -> String {
    let mut s = String::from("\\data\\\n");
    for (i, o) in model.orders.iter().enumerate() {
        let _ = writeln!(s, "ngram {}={}", i + 1, o.len());
    }
    let top = model.orders.len();
    for (i, o) in model.orders.iter().enumerate() {
        let _ = write!(s, "\n\\{}-grams:\n", i + 1);
        for e in o {
            let _ = write!(s, "{}\t", e.prob);
            for (k, w) in e.words.iter().enumerate() {
                if k > 0 {
                    s.push(' ');
                }
                s.push_str(model.vocab.get(*w as usize).map_or("<unk>", String::as_str));
            }
            if i + 1 < top {
                let _ = write!(s, "\t{}", e.backoff);
            }
            s.push('\n');
        }
    }
    s.push_str("\n\\end\\\n");
    s
}
