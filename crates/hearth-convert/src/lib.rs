//! Inspecting, quantizing, compressing and converting models: the logic behind
//! `hearth inspect`, `hearth quantize`, `hearth compress`, `hearth convert` and
//! `hearth compare`.
//!
//! This crate reads and writes files (GGUF through hearth-gguf, safetensors
//! directories) and scores models through hearth-engine's perplexity; it knows nothing
//! of HTTP or the terminal (progress goes through callbacks). Key design choice: every
//! conversion streams one tensor at a time (decode to f32, encode, write), so memory
//! stays bounded by the largest tensor, and every file written carries a
//! [`hearth_lineage::Provenance`] record.

#![warn(missing_docs)]

pub mod codec;
pub mod compare;
pub mod compress;
mod error;
pub mod facts;
pub mod hf_dir;
pub mod hf_export;
pub mod hf_import;
use hearth_model::hf_names;
pub mod inspect;
pub mod license;
pub mod machine;
pub mod memory;
pub mod merge;
pub mod recipe;
pub mod source;
pub mod svd;
pub mod sweep;
mod tokenizer_json;
pub mod write_gguf;

pub use compare::{compare, CompareConfig, CompareReport};
pub use compress::{compress, parse_targets, CompressOptions, CompressSummary, RankChoice};
pub use error::{Error, Result};
pub use facts::ModelFacts;
pub use inspect::{inspect, InspectReport};
pub use license::LicenseVerdict;
pub use merge::{merge, MergeOptions};
pub use recipe::Scheme;
pub use source::{GgufSource, TensorSource};
pub use sweep::{sweep, SweepPoint, SweepReport};
pub use write_gguf::{quantize, quantize_for_loading, QuantizeOptions, WriteSummary};
