//! PII redaction through hearth-guard: every record's text is scanned, findings are
//! replaced by the chosen operator, and the counts per kind go to a `pii` field and to the
//! report. Records are all kept.

use std::collections::BTreeMap;

use hearth_guard::{Anonymizer, Operator, PiiKind, Scanner};
use rayon::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::stage::{Stage, Verdict};

/// Redacts personal data and secrets in the text field.
pub struct PiiRedactor {
    scanner: Scanner,
    anonymizer: Anonymizer,
}

impl PiiRedactor {
    /// A redactor with hearth-guard's full scanner and `operator` for every kind.
    /// `Pseudonymize` needs a shared vault and is refused here.
    pub fn new(operator: Operator) -> Result<PiiRedactor> {
        if operator == Operator::Pseudonymize {
            return Err(Error::Param {
                name: "operator",
                what: "pseudonymize needs a vault; use mask, placeholder or hash in data runs"
                    .into(),
            });
        }
        Ok(PiiRedactor {
            scanner: Scanner::new(),
            anonymizer: Anonymizer::new(operator),
        })
    }

    /// Looks for `kinds` only (default: [`PiiKind::DEFAULT`]; [`PiiKind::ALL`] adds
    /// person names and street addresses).
    pub fn with_kinds(mut self, kinds: &[PiiKind]) -> PiiRedactor {
        self.scanner = Scanner::with_kinds(kinds);
        self
    }
}

impl Stage for PiiRedactor {
    fn name(&self) -> &str {
        "pii"
    }

    fn judge(&self, records: &[Record]) -> Result<Vec<Verdict>> {
        records
            .par_iter()
            .map(|r| {
                let findings = self.scanner.scan(&r.text);
                if findings.is_empty() {
                    return Ok(Verdict {
                        keep: true,
                        ..Verdict::default()
                    });
                }
                let text = self
                    .anonymizer
                    .anonymize(&r.text, &findings, None)
                    .map_err(|e| Error::Param {
                        name: "operator",
                        what: format!("redacting record `{}`: {e}", r.id),
                    })?;
                let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
                for f in &findings {
                    *counts.entry(f.kind.label()).or_default() += 1;
                }
                let reasons = counts.keys().map(|k| k.to_string()).collect();
                let field: serde_json::Map<String, Value> = counts
                    .into_iter()
                    .map(|(k, n)| (k.to_string(), Value::from(n)))
                    .collect();
                Ok(Verdict {
                    keep: true,
                    reasons,
                    fields: vec![("pii".into(), Value::Object(field))],
                    text: Some(text),
                    ..Verdict::default()
                })
            })
            .collect()
    }
}
