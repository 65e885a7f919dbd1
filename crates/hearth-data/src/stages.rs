//! The per-record stages built into this crate: quality filter and domain classifier.

use rayon::prelude::*;
use serde_json::Value;

use crate::domains::DomainClassifier;
use crate::error::Result;
use crate::quality::QualityConfig;
use crate::record::Record;
use crate::stage::{Stage, Verdict};

/// Drops records failing any enabled quality rule; each failed rule is a reason.
#[derive(Debug, Clone, Default)]
pub struct QualityFilter {
    /// The rules.
    pub config: QualityConfig,
}

impl Stage for QualityFilter {
    fn name(&self) -> &str {
        "quality"
    }

    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        Ok(records
            .par_iter()
            .map(|r| {
                let fails = self.config.failures(&r.text);
                Verdict {
                    keep: fails.is_empty(),
                    reasons: fails.into_iter().map(String::from).collect(),
                    ..Verdict::default()
                }
            })
            .collect())
    }
}

/// Labels records with their domains (a `domains` field: name → score), routes each to
/// `routes/DOMAIN/` (or `routes/other/`), and keeps them all.
#[derive(Debug, Clone)]
pub struct DomainStage {
    /// The compiled keyword lists.
    pub classifier: DomainClassifier,
}

impl Stage for DomainStage {
    fn name(&self) -> &str {
        "domains"
    }

    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        Ok(records
            .par_iter()
            .map(|r| {
                let labels = self.classifier.labels(&r.text);
                let mut map = serde_json::Map::new();
                for l in &labels {
                    map.insert(
                        l.domain.clone(),
                        Value::from((l.score * 1000.0).round() / 1000.0),
                    );
                }
                let mut routes: Vec<String> = labels.into_iter().map(|l| l.domain).collect();
                if routes.is_empty() {
                    routes.push("other".into());
                }
                Verdict {
                    keep: true,
                    fields: vec![("domains".into(), Value::Object(map))],
                    routes,
                    ..Verdict::default()
                }
            })
            .collect())
    }
}
