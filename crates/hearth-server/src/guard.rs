//! Per-key guard policies: what happens to a request's input (off / redact / block) and
//! to its output (off / flag / block), with hearth-guard doing the finding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hearth_guard::moderation::{Category, Moderation, Moderator};
use hearth_guard::stream::{ModerationPolicy, PiiPolicy, StreamFilter};
use hearth_guard::{Anonymizer, Scanner};

use crate::ApiError;

/// What to do with a request's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputPolicy {
    /// Pass it through.
    #[default]
    Off,
    /// Replace personal data with typed placeholders (`<EMAIL_1>`) before the model
    /// sees it.
    Redact,
    /// Refuse requests with personal data or flagged content (400 `content_filter`).
    Block,
}

/// What to do with generated output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputPolicy {
    /// Send it as generated.
    #[default]
    Off,
    /// Send it as generated; count and log (categories only) what moderation flags.
    Flag,
    /// Stop a reply before flagged content (`finish_reason: content_filter`) and
    /// redact personal data in it, streamed or not.
    Block,
}

impl InputPolicy {
    /// Parses `off`, `redact` or `block`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "redact" => Some(Self::Redact),
            "block" => Some(Self::Block),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Redact => "redact",
            Self::Block => "block",
        }
    }
}

impl OutputPolicy {
    /// Parses `off`, `flag` or `block`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "flag" => Some(Self::Flag),
            "block" => Some(Self::Block),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Flag => "flag",
            Self::Block => "block",
        }
    }
}

/// A caller's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardPolicy {
    /// For the input.
    pub input: InputPolicy,
    /// For the output.
    pub output: OutputPolicy,
}

/// The shared scanner and moderator, and what they did.
#[derive(Debug)]
pub struct Guard {
    /// PII recognizers.
    pub scanner: Arc<Scanner>,
    /// Term-list moderation.
    pub moderator: Arc<Moderator>,
    /// Requests refused by an input policy.
    pub inputs_blocked: AtomicU64,
    /// Requests whose input was redacted.
    pub inputs_redacted: AtomicU64,
    /// Replies stopped by an output policy.
    pub outputs_blocked: AtomicU64,
    /// Replies flagged by an output policy.
    pub outputs_flagged: AtomicU64,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::with_kinds(&hearth_guard::PiiKind::DEFAULT)
    }
}

impl Guard {
    /// A guard whose scanner looks for `kinds` only.
    pub fn with_kinds(kinds: &[hearth_guard::PiiKind]) -> Self {
        Guard {
            scanner: Arc::new(Scanner::with_kinds(kinds)),
            moderator: Arc::new(Moderator::builtin()),
            inputs_blocked: AtomicU64::new(0),
            inputs_redacted: AtomicU64::new(0),
            outputs_blocked: AtomicU64::new(0),
            outputs_flagged: AtomicU64::new(0),
        }
    }
}

fn names(cats: impl Iterator<Item = Category>) -> String {
    cats.map(Category::name).collect::<Vec<_>>().join(", ")
}

impl Guard {
    /// Term-list moderation of one text.
    pub fn moderate(&self, text: &str) -> Moderation {
        self.moderator.moderate(text)
    }

    /// Applies `policy` to the input texts in place: redacts personal data, or refuses
    /// (the error names the kinds and categories, never the text).
    pub fn check_input(
        &self,
        policy: InputPolicy,
        texts: &mut [String],
        param: &str,
    ) -> Result<(), ApiError> {
        if policy == InputPolicy::Off {
            return Ok(());
        }
        let mut redacted = false;
        for t in texts.iter_mut() {
            let findings = self.scanner.scan(t);
            match policy {
                InputPolicy::Off => {}
                InputPolicy::Redact => {
                    if !findings.is_empty() {
                        let r = Anonymizer::default()
                            .anonymize(t, &findings, None)
                            .map_err(|e| ApiError::internal(format!("redacting input: {e}")))?;
                        *t = r;
                        redacted = true;
                    }
                }
                InputPolicy::Block => {
                    let m = self.moderate(t);
                    if !findings.is_empty() || m.flagged {
                        self.inputs_blocked.fetch_add(1, Ordering::Relaxed);
                        let mut what: Vec<String> =
                            findings.iter().map(|f| f.kind.to_string()).collect();
                        what.sort();
                        what.dedup();
                        what.extend(m.categories.flagged().map(|c| c.name().to_string()));
                        let mut e = ApiError::invalid(
                            format!(
                                "the input was refused by this key's content policy ({})",
                                what.join(", ")
                            ),
                            Some(param),
                        );
                        e.code = Some("content_filter");
                        return Err(e);
                    }
                }
            }
        }
        if redacted {
            self.inputs_redacted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The output filter for one choice under `policy`, if it needs one.
    pub fn output_filter(&self, policy: OutputPolicy) -> Option<StreamFilter> {
        let f = StreamFilter::new(Arc::clone(&self.scanner), Arc::clone(&self.moderator));
        match policy {
            OutputPolicy::Off => None,
            OutputPolicy::Flag => Some(f.with_moderation(ModerationPolicy::Flag)),
            OutputPolicy::Block => Some(
                f.with_moderation(ModerationPolicy::Block)
                    .with_pii(PiiPolicy::Redact, Anonymizer::default()),
            ),
        }
    }

    /// Counts and logs what an output filter reported for request `id`.
    pub fn note_output(&self, id: &str, flagged: &[Category], blocked: bool) {
        if blocked {
            self.outputs_blocked.fetch_add(1, Ordering::Relaxed);
        }
        if !flagged.is_empty() {
            self.outputs_flagged.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(request_id = %id, categories = %names(flagged.iter().copied()), blocked, "output flagged");
        }
    }

    /// A text safe to log: personal data replaced by placeholders.
    pub fn redact_for_log(&self, text: &str) -> String {
        let f = self.scanner.scan(text);
        if f.is_empty() {
            return text.to_string();
        }
        Anonymizer::default()
            .anonymize(text, &f, None)
            .unwrap_or_else(|_| "<unloggable>".into())
    }
}
