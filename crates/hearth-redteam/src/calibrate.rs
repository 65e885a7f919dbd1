//! Measuring the refusal detector on PyRIT's human-labelled refusal set.
//!
//! The set (`refusal.csv` in the `pyrit==1.1.0` wheel, MIT) has columns `objective,
//! assistant_response, human_score, data_type`; `human_score` 1 means the response is a
//! refusal. A `# ...` first line carries the dataset version. Fields may span lines
//! inside double quotes (RFC 4180).

use std::path::Path;

use serde::Serialize;

use crate::detector;
use crate::{Error, Result};

/// One labelled response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    /// The response text.
    pub response: String,
    /// Whether people judged it a refusal.
    pub refusal: bool,
}

/// The detector's confusion counts and scores on a labelled set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetectorScore {
    /// Labelled examples.
    pub n: usize,
    /// Refusals found.
    pub true_positives: usize,
    /// Compliant answers called refusals.
    pub false_positives: usize,
    /// Refusals missed.
    pub false_negatives: usize,
    /// Compliant answers passed.
    pub true_negatives: usize,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// (tp + tn) / n.
    pub accuracy: f64,
}

/// Scores [`detector::is_refusal`] on `set`.
pub fn score(set: &[Labelled]) -> DetectorScore {
    let mut s = DetectorScore {
        n: set.len(),
        ..Default::default()
    };
    for x in set {
        match (detector::is_refusal(&x.response), x.refusal) {
            (true, true) => s.true_positives += 1,
            (true, false) => s.false_positives += 1,
            (false, true) => s.false_negatives += 1,
            (false, false) => s.true_negatives += 1,
        }
    }
    let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    s.precision = div(s.true_positives, s.true_positives + s.false_positives);
    s.recall = div(s.true_positives, s.true_positives + s.false_negatives);
    s.accuracy = div(s.true_positives + s.true_negatives, s.n);
    s
}

/// Reads PyRIT's `refusal.csv`.
pub fn read_pyrit_refusal_csv(path: &Path) -> Result<Vec<Labelled>> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    let data_err = |line: usize, what: String| Error::Data {
        path: path.to_path_buf(),
        line,
        what,
    };
    let records = parse_csv(&text).map_err(|(line, what)| data_err(line, what))?;
    let mut rows = records
        .into_iter()
        .filter(|(_, r)| !(r.len() == 1 && r[0].starts_with('#')));
    let (hline, header) = rows
        .next()
        .ok_or_else(|| data_err(1, "empty file".into()))?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| data_err(hline, format!("no {name:?} column in {header:?}")))
    };
    let (resp, label) = (col("assistant_response")?, col("human_score")?);
    rows.map(|(line, r)| {
        let get = |i: usize| {
            r.get(i)
                .ok_or_else(|| data_err(line, format!("only {} fields", r.len())))
        };
        let refusal = match get(label)?.trim() {
            "1" => true,
            "0" => false,
            other => {
                return Err(data_err(
                    line,
                    format!("human_score {other:?} is not 0 or 1"),
                ))
            }
        };
        Ok(Labelled {
            response: get(resp)?.clone(),
            refusal,
        })
    })
    .collect()
}

/// A CSV record: the line it starts on and its fields.
type CsvRecord = (usize, Vec<String>);

/// RFC 4180 records with the line each starts on; `Err((line, what))` on an unclosed
/// quote.
fn parse_csv(text: &str) -> std::result::Result<Vec<CsvRecord>, (usize, String)> {
    let mut out = Vec::new();
    let (mut rec, mut field) = (Vec::new(), String::new());
    let (mut line, mut start, mut quoted, mut any) = (1, 1, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                any = true;
            }
            ',' => {
                rec.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() {
                    rec.push(std::mem::take(&mut field));
                    out.push((start, std::mem::take(&mut rec)));
                }
                any = false;
                start = line;
            }
            c => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err((start, "a quoted field is never closed".into()));
    }
    if any || !field.is_empty() {
        rec.push(field);
        out.push((start, rec));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_newlines_and_the_version_line() {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = d.path().join("refusal.csv");
        std::fs::write(
            &p,
            "# dataset_version=1.2\nobjective,assistant_response,human_score,data_type\n\
             a,\"I'm sorry, I can't help.\",1,text\nb,\"Once upon a time,\nthe \"\"end\"\".\",0,text\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let set = read_pyrit_refusal_csv(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.len(), 2);
        assert_eq!(set[1].response, "Once upon a time,\nthe \"end\".");
        let s = score(&set);
        assert_eq!(
            (s.true_positives, s.true_negatives, s.precision, s.recall),
            (1, 1, 1.0, 1.0)
        );
        std::fs::write(&p, "objective,assistant_response,human_score\nx,y,maybe\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let e = read_pyrit_refusal_csv(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("refusal.csv:2:") && e.contains("maybe"), "{e}");
        std::fs::write(&p, "a,\"open\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_pyrit_refusal_csv(&p).is_err());
    }
}
