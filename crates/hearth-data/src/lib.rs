//! Build clean training sets from JSONL or Parquet: readers and writers (JSONL plain, gzip,
//! zstd, and Parquet; sharded output written under temporary names), exact dedup on normalised text and MinHash-LSH
//! near-dedup with verified candidates, Gopher/C4 quality rules, keyword domain
//! classification, PII redaction (hearth-guard), perplexity filtering through the
//! [`Scorer`] trait, CCNet-style n-gram LM scoring (Kneser-Ney training, ARPA, head /
//! middle / tail buckets), and TOML pipelines run by `--shard i/N` workers plus a merge step.
//!
//! Must never depend on the model stack: stages that need a language model take it through
//! a trait the caller implements, so this crate builds and tests without one.
//!
//! Key design choice: records travel as their raw input line plus the two fields a stage
//! reads (text and id), so every other field leaves exactly as it came in; and every index
//! (signatures, band hashes, clusters) is a flat array ordered by input position, so results
//! are the same for any thread count and memory grows with the number of documents, not
//! with their size.

mod arpa;
mod ccnet;
mod chain;
mod dedup;
mod domains;
mod error;
mod hash;
mod input;
mod kneser_ney;
mod lm_score;
mod lsh;
mod merge;
mod minhash;
mod ngram;
mod normalize;
mod output;
mod parquet_read;
mod parquet_write;
mod perplexity;
mod pii;
mod pipeline;
mod progress;
mod quality;
mod record;
mod scan;
mod stage;
mod stages;
mod union_find;

pub use arpa::{parse_arpa, write_arpa};
pub use ccnet::{ccnet_normalize, word_tokens};
pub use chain::Chain;
pub use dedup::{dedup, DedupConfig, DedupReport, NearDedupConfig};
pub use domains::{DomainClassifier, DomainConfig, DomainList, DomainScore};
pub use error::{Error, Result};
pub use hash::hash_bytes;
pub use input::{open_reader, Batches, Compression, InputSet, LineBatch, RawLine};
pub use kneser_ney::{KneserNeyTrainer, MAX_TRAIN_ORDER};
pub use lm_score::{
    check_percentiles, round_ppl, write_buckets, BucketOutput, Cutoffs, LmScoreStage,
};
pub use lsh::{candidate_pairs, LshParams};
pub use minhash::{jaccard, MinHasher, Shingle};
pub use ngram::{
    extend, load_lm, ngram_hash, BackoffModel, NgramEntry, NgramLm, BOS, EOS, MAGIC, UNK, VERSION,
};
pub use normalize::{exact_key, normalize};
pub use output::{write_atomic, Format, ShardSpec, ShardWriter};
pub use parquet_read::{is_parquet, JSON_COLUMN_KEY};
pub use perplexity::{percentile, FieldThreshold, PerplexityFilter, Scorer};
pub use pii::PiiRedactor;
pub use pipeline::{Pipeline, PipelineConfig, PipelineReport, StageConfig};
pub use progress::{NoProgress, Progress};
pub use quality::{QualityConfig, QUALITY_RULES};
pub use record::{Fields, Malformed, Record};
pub use scan::{scan, Revisit, ScanStats, BATCH_LINES};
pub use stage::{run_stage, Stage, StageOutput, StageReport, Verdict};
pub use stages::{DomainStage, QualityFilter};
pub use union_find::UnionFind;
