//! Text in, findings out: personal data (PII) and secrets found in text, with validation,
//! and operators that redact or reversibly pseudonymize what was found.
//!
//! Must never depend on models, HTTP, files or anything else of ours: the server, the data
//! pipeline and the command line all call it on plain `&str`.
//!
//! Key design choice: every recognizer *validates* what a pattern proposes (check digits,
//! calendar dates, region and IIN tables, country lengths, octet ranges) and checks its
//! boundaries explicitly (Rust's `regex` has no look-around), so digit runs inside longer
//! numbers, order ids and dates do not match. Recognizers are small types behind
//! [`Recognizer`], one file per family; the [`Scanner`] runs them all and keeps, of any
//! overlapping findings, the longest (then the highest scored).
//!
//! Claimed kinds: see [`PiiKind`]. Not claimed: person names, street addresses, passport
//! numbers and domestic bank account numbers (none has a pattern or checksum that works
//! honestly without a model or a context dictionary), and generic high-entropy strings
//! without a known prefix or a `key = value` context.

mod card;
mod cn_id;
mod cn_region_table;
mod email;
mod error;
mod finding;
mod iban;
mod ip;
pub mod moderation;
pub mod operators;
mod phone;
mod recognizer;
mod scanner;
mod secret;
pub mod stream;
mod url_cred;

pub use card::CardRecognizer;
pub use cn_id::CnResidentIdRecognizer;
pub use email::EmailRecognizer;
pub use error::{Error, Result};
pub use finding::{Finding, PiiKind};
pub use iban::IbanRecognizer;
pub use ip::{Ipv4Recognizer, Ipv6Recognizer};
pub use operators::{Anonymizer, Operator, Vault};
pub use phone::PhoneRecognizer;
pub use recognizer::Recognizer;
pub use scanner::Scanner;
pub use secret::SecretRecognizer;
pub use url_cred::UrlCredentialsRecognizer;
