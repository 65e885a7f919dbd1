//! Perplexity filtering through a [`Scorer`] the caller provides (the binary passes one
//! backed by a real model), so this crate never depends on the model stack.

use serde_json::Value;

use crate::error::Result;
use crate::record::Record;
use crate::stage::{Stage, Verdict};

/// Scores texts with a language model.
pub trait Scorer: Sync {
    /// The perplexity of each text, in order. A text the model cannot score (too short,
    /// say) gets `f32::NAN`.
    fn perplexity(&self, texts: &[&str]) -> Result<Vec<f32>>;
}

/// Writes each record's perplexity to a field and keeps those at or under a threshold.
/// Records without a score (NaN) are dropped with reason `ppl_unscored`.
pub struct PerplexityFilter<'a> {
    /// The model.
    pub scorer: &'a dyn Scorer,
    /// Keep records whose perplexity is at most this (`f32::INFINITY`: keep all scored).
    pub max_ppl: f32,
    /// The field the score is written to.
    pub field: String,
}

impl Stage for PerplexityFilter<'_> {
    fn name(&self) -> &str {
        "perplexity"
    }

    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        let texts: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
        let scores = self.scorer.perplexity(&texts)?;
        Ok(scores
            .into_iter()
            .map(|ppl| {
                let scored = ppl.is_finite();
                let keep = scored && ppl <= self.max_ppl;
                let reasons = match (scored, keep) {
                    (false, _) => vec!["ppl_unscored".to_string()],
                    (true, false) => vec!["ppl_above_threshold".to_string()],
                    (true, true) => Vec::new(),
                };
                let value = if scored {
                    Value::from(f64::from(ppl))
                } else {
                    Value::Null
                };
                Verdict {
                    keep,
                    reasons,
                    fields: vec![(self.field.clone(), value)],
                    value: scored.then_some(f64::from(ppl)),
                    ..Verdict::default()
                }
            })
            .collect())
    }

    fn histogram_edges(&self) -> Vec<f64> {
        vec![5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
    }
}

/// Keeps records whose numeric `field` is at most `max`: the second step of a percentile
/// cut, after a scoring pass wrote the scores. Records without a number there are dropped
/// with reason `no_FIELD`.
pub struct FieldThreshold {
    /// The field holding the score.
    pub field: String,
    /// Keep at or under this.
    pub max: f64,
}

impl Stage for FieldThreshold {
    fn name(&self) -> &str {
        "threshold"
    }

    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        records
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_slice(&r.raw)?;
                let x = v.get(&self.field).and_then(Value::as_f64);
                let (keep, reasons) = match x {
                    Some(x) if x <= self.max => (true, Vec::new()),
                    Some(_) => (false, vec![format!("{}_above_cutoff", self.field)]),
                    None => (false, vec![format!("no_{}", self.field)]),
                };
                Ok(Verdict {
                    keep,
                    reasons,
                    value: x,
                    ..Verdict::default()
                })
            })
            .collect()
    }
}

/// The nearest-rank `p`-th percentile (0–100) of the finite `values`, or `None` if none.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Perplexity stand-in for unit tests of the stage's bookkeeping only: the text's
    /// length in bytes (the real model is tested through the binary).
    struct ByLength;
    impl Scorer for ByLength {
        fn perplexity(&self, texts: &[&str]) -> Result<Vec<f32>> {
            Ok(texts
                .iter()
                .map(|t| {
                    if t.is_empty() {
                        f32::NAN
                    } else {
                        t.len() as f32
                    }
                })
                .collect())
        }
    }

    fn rec(text: &str) -> Record {
        Record {
            raw: Vec::new(),
            text: text.into(),
            id: String::new(),
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0, f64::NAN];
        assert_eq!(percentile(&v, 40.0), Some(2.0));
        assert_eq!(percentile(&v, 100.0), Some(5.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn field_threshold_reads_the_written_score() {
        let mut a = rec("a");
        a.raw = br#"{"text":"a","ppl":12.0}"#.to_vec();
        let mut b = rec("b");
        b.raw = br#"{"text":"b","ppl":30.0}"#.to_vec();
        let mut c = rec("c");
        c.raw = br#"{"text":"c","ppl":null}"#.to_vec();
        let t = FieldThreshold {
            field: "ppl".into(),
            max: 20.0,
        };
        let v = t.judge(&[a, b, c]).unwrap();
        assert_eq!(
            v.iter().map(|v| v.keep).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(v[2].reasons, ["no_ppl"]);
    }

    #[test]
    fn threshold_reasons_and_field() {
        let f = PerplexityFilter {
            scorer: &ByLength,
            max_ppl: 3.0,
            field: "ppl".into(),
        };
        let v = f.judge(&[rec("abc"), rec("abcd"), rec("")]).unwrap();
        assert_eq!(
            v.iter().map(|v| v.keep).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(v[1].reasons, ["ppl_above_threshold"]);
        assert_eq!(v[2].reasons, ["ppl_unscored"]);
        assert_eq!(v[0].fields, [("ppl".to_string(), Value::from(3.0))]);
        assert_eq!(v[2].fields, [("ppl".to_string(), Value::Null)]);
    }
}
