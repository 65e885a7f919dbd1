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
