//! The provenance record every file hearth writes carries: where it came from (the
//! source file's name and sha256), under which licence, by which operation with which
//! parameters, and by which tool version.
//!
//! This crate depends on serde alone and knows nothing of file formats: a GGUF file
//! stores the record as JSON under [`METADATA_KEY`], a safetensors file under the same
//! key in its `__metadata__` map. Key design choice: a record keeps the record of its
//! source (`previous`), so a chain of conversions (GGUF → safetensors → Q8_0 GGUF)
//! stays readable end to end.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metadata key under which the record is stored, as JSON.
pub const METADATA_KEY: &str = "hearth.provenance";

/// One step of an artifact's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// What was done: `quantize`, `convert`, ...
    pub operation: String,
    /// The settings of the operation (`type` → `Q8_0`, ...).
    pub parameters: BTreeMap<String, String>,
    /// File name of the source (no directories: paths are private).
    pub source_file: String,
    /// Hex sha256 of the source file's bytes (for a directory: of its weight files
    /// in name order, concatenated).
    pub source_sha256: String,
    /// The source's licence as its metadata states it, if it does.
    pub license: Option<String>,
    /// The tool that wrote the file (`hearth`).
    pub tool: String,
    /// The tool's version.
    pub tool_version: String,
    /// The source's own record, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<Provenance>>,
}

/// A record that could not be read back.
#[derive(Debug)]
pub struct ParseError(serde_json::Error);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "provenance record `{METADATA_KEY}` is malformed: {}",
            self.0
        )
    }
}

impl std::error::Error for ParseError {}

impl Provenance {
    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and maps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a record written by [`to_json`](Self::to_json).
    pub fn from_json(s: &str) -> Result<Self, ParseError> {
        serde_json::from_str(s).map_err(ParseError)
    }

    /// The operations from the first to this one (`["convert", "quantize"]`).
    pub fn chain(&self) -> Vec<&str> {
        let mut ops = vec![self.operation.as_str()];
        let mut cur = self;
        while let Some(p) = &cur.previous {
            ops.push(p.operation.as_str());
            cur = p;
        }
        ops.reverse();
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(op: &str, previous: Option<Provenance>) -> Provenance {
        Provenance {
            operation: op.into(),
            parameters: BTreeMap::from([("type".to_string(), "Q8_0".to_string())]),
            source_file: "m.gguf".into(),
            source_sha256: "ab".repeat(32),
            license: Some("apache-2.0".into()),
            tool: "hearth".into(),
            tool_version: "0.1.0".into(),
            previous: previous.map(Box::new),
        }
    }

    #[test]
    fn round_trips_with_its_history() {
        let r = record("quantize", Some(record("convert", None)));
        let back = Provenance::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.chain(), vec!["convert", "quantize"]);
    }

    #[test]
    fn malformed_record_is_an_error_naming_the_key() {
        let err = Provenance::from_json("{\"operation\": 3}").unwrap_err();
        assert!(err.to_string().contains(METADATA_KEY), "{err}");
    }
}
