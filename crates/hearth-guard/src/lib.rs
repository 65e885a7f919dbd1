//! Text in, findings out: personal data (PII) and secrets found in text, with validation;
//! operators that redact or reversibly pseudonymize what was found; content moderation in
//! OpenAI's categories; and a streaming filter for generated output.
//!
//! Must never depend on models, HTTP, files or anything else of ours: the server, the data
//! pipeline and the command line all call it on plain `&str`.
//!
//! # PII
//!
//! Every recognizer *validates* what a pattern proposes (check digits, calendar dates,
//! region and IIN tables, country lengths, octet ranges) and checks its boundaries
//! explicitly (Rust's `regex` has no look-around), so digit runs inside longer numbers,
//! order ids and dates do not match. Recognizers are small types behind [`Recognizer`],
//! one file per family; the [`Scanner`] runs them all and keeps, of any overlapping
//! findings, the longest (then the highest scored).
//!
//! Claimed kinds: see [`PiiKind`]. Person names (English given-name dictionary and
//! context cues; Chinese surnames and cues) and street addresses (US and mainland Chinese
//! patterns) are found too but are opt-in ([`Scanner::with_kinds`]), since a dictionary
//! and capitalisation are weaker evidence than a checksum. Not claimed: names and
//! addresses in other languages, passport numbers and domestic bank account numbers (no
//! pattern or checksum works honestly without a model), and generic high-entropy strings
//! without a known prefix or a `key = value` context.
//!
//! # Moderation
//!
//! [`moderation`]: term and pattern lists (built-in English and Chinese, the `.terms`
//! format, npm `naughty-words` JSON) → per-category scores and flags under OpenAI's
//! category names, an optional LLM judge behind [`moderation::ModerationJudge`], and the
//! Llama-Guard-style prompt and reply parser for that judge.
//!
//! # Using it in the server
//!
//! Build the expensive parts once and share them (`Arc`); they are `Send + Sync`:
//!
//! ```
//! use std::sync::Arc;
//! use hearth_guard::moderation::{Category, LlamaGuardPrompt, LlamaGuardVerdict, MergeRule,
//!     Moderator, Role, merge_scores};
//! use hearth_guard::stream::{ModerationPolicy, PiiPolicy, StreamFilter};
//! use hearth_guard::{Anonymizer, Scanner};
//!
//! let scanner = Arc::new(Scanner::new());
//! let moderator = Arc::new(Moderator::builtin());
//!
//! // POST /v1/moderations: one result per input string.
//! let m = moderator.moderate("I will kill you");
//! assert!(m.flagged);
//! for (category, flagged) in m.categories.iter() {
//!     let _ = (category.name(), flagged, m.scores.get(category)); // "harassment/threatening", ...
//! }
//!
//! // With the judge on: prompt the served model, parse its reply, merge, flag.
//! let prompt = LlamaGuardPrompt::default().build(&[(Role::User, "I will kill you")], Role::User);
//! let reply = "unsafe\nS1"; // what the model generated for `prompt`
//! let judged = LlamaGuardVerdict::parse(reply).map(|v| v.scores());
//! let scores = match judged {
//!     Ok(j) => merge_scores(&m.scores, &j, MergeRule::Max),
//!     Err(_) => m.scores, // an unreadable reply: fall back to the term lists
//! };
//! assert!(moderator.verdict(scores, m.matches).categories.get(Category::Violence));
//!
//! // Input policy `redact`: scan and anonymize before the prompt reaches the model.
//! let text = "call me on +1-415-555-2671";
//! let redacted = Anonymizer::default().anonymize(text, &scanner.scan(text), None);
//! assert_eq!(redacted.unwrap(), "call me on <PHONE_1>");
//!
//! // Output policy: one filter per response, fed each generated piece of text.
//! let mut filter = StreamFilter::new(scanner.clone(), moderator.clone())
//!     .with_moderation(ModerationPolicy::Block)
//!     .with_pii(PiiPolicy::Redact, Anonymizer::default());
//! let mut sent = String::new();
//! for piece in ["Sure. Mail ", "a@b.", "com or I will ", "kill you."] {
//!     let out = filter.push(piece);
//!     sent.push_str(&out.text); // send `out.text` as the next SSE delta
//!     if let Some(reason) = out.blocked {
//!         let _ = reason; // stop generating; finish with finish_reason "content_filter"
//!         break;
//!     }
//! }
//! sent.push_str(&filter.finish().text); // at the end of the stream
//! // "I will kill you" is one pattern match, withheld whole.
//! assert_eq!(sent, "Sure. Mail <EMAIL_1> or ");
//! ```
//!
//! Logs and usage records should carry [`Finding::kind`] and spans, or the redacted text,
//! never the finding's text.

mod address;
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
mod person;
mod person_zh;
mod phone;
mod recognizer;
mod scanner;
mod secret;
pub mod stream;
mod url_cred;

pub use address::AddressRecognizer;
pub use card::CardRecognizer;
pub use cn_id::CnResidentIdRecognizer;
pub use email::EmailRecognizer;
pub use error::{Error, Result};
pub use finding::{Finding, PiiKind};
pub use iban::IbanRecognizer;
pub use ip::{Ipv4Recognizer, Ipv6Recognizer};
pub use operators::{Anonymizer, Operator, Vault};
pub use person::PersonRecognizer;
pub use phone::PhoneRecognizer;
pub use recognizer::Recognizer;
pub use scanner::Scanner;
pub use secret::SecretRecognizer;
pub use url_cred::UrlCredentialsRecognizer;
