//! Several record stages applied one after another as one [`Stage`]: a record dropped by a
//! stage skips the rest; text replaced by a stage (redaction) is what later stages see.

use crate::error::Result;
use crate::record::Record;
use crate::stage::{Stage, Verdict};

/// Stages in order, run as one.
pub struct Chain<'a> {
    stages: Vec<Box<dyn Stage + 'a>>,
}

impl<'a> Chain<'a> {
    /// The chain of `stages`, applied in order.
    pub fn new(stages: Vec<Box<dyn Stage + 'a>>) -> Chain<'a> {
        Chain { stages }
    }
}

impl Stage for Chain<'_> {
    fn name(&self) -> &str {
        "pipeline"
    }

    /// Reasons are prefixed with the stage's name (`quality:min_words`), and the stage
    /// that drops a record adds `STAGE:dropped`.
    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        let mut current: Vec<Record> = records.to_vec();
        let mut finals = vec![
            Verdict {
                keep: true,
                ..Verdict::default()
            };
            records.len()
        ];
        let mut alive: Vec<usize> = (0..records.len()).collect();
        for stage in &self.stages {
            let batch: Vec<Record> = alive.iter().map(|&i| current[i].clone()).collect();
            let verdicts = stage.judge(&batch)?;
            let mut still = Vec::with_capacity(alive.len());
            for (&i, v) in alive.iter().zip(verdicts) {
                let f = &mut finals[i];
                let name = stage.name();
                f.reasons
                    .extend(v.reasons.iter().map(|r| format!("{name}:{r}")));
                if let Some(t) = v.text {
                    current[i].text = t.clone();
                    f.text = Some(t);
                }
                f.fields.extend(v.fields);
                f.routes.extend(v.routes);
                if v.value.is_some() {
                    f.value = v.value;
                }
                if v.keep {
                    still.push(i);
                } else {
                    f.keep = false;
                    f.reasons.push(format!("{name}:dropped"));
                }
            }
            alive = still;
        }
        Ok(finals)
    }

    fn histogram_edges(&self) -> Vec<f64> {
        self.stages
            .iter()
            .map(|s| s.histogram_edges())
            .find(|e| !e.is_empty())
            .unwrap_or_default()
    }
}
