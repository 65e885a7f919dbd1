//! Content moderation in OpenAI's categories, from configurable term and pattern lists,
//! with an optional LLM judge as a second opinion.
//!
//! - [`Category`]: OpenAI moderation's 13 categories by their exact names.
//! - [`TermList`]: the `.terms` file format (documented in [`term_list`]), the built-in
//!   English and Chinese starter lists, and the npm `naughty-words` JSON format.
//! - [`TermMatcher`]: every literal term in one aho-corasick pass (word-boundary aware
//!   for spaced scripts, substring for CJK), then the `re:` patterns.
//! - [`Moderator`]: matches → per-category scores in `0..=1` → flags by [`Thresholds`].
//! - [`ModerationJudge`] and [`merge_scores`]: a judge the server implements, merged by
//!   a [`MergeRule`]; [`LlamaGuardPrompt`] and [`LlamaGuardVerdict`] build the judge's
//!   prompt and parse its reply (pure text).
//! - [`ModerationProbe`]: the other kind of judge, logistic-regression heads over a
//!   language model's pooled hidden states (the caller computes them).
//!
//! For `/v1/moderations`: `Moderator::builtin().moderate(text)` (or
//! [`Moderator::moderate_with`]) gives `flagged`, `categories` (iterate
//! [`CategoryFlags::iter`]) and `category_scores` ([`CategoryScores::iter`]), keyed by
//! [`Category::name`].

mod category;
mod judge;
mod llama_guard;
mod matcher;
mod probe;
pub mod term_list;

pub use category::{Category, CategoryFlags, CategoryScores, Thresholds, CATEGORY_COUNT};
pub use judge::{merge_scores, p_unsafe, veto, MergeRule, ModerationJudge};
pub use llama_guard::{
    judge_excerpt, Hazard, LlamaGuardPrompt, LlamaGuardVerdict, Role, JUDGE_TURN_CHARS,
};
pub(crate) use matcher::is_unspaced_script;
pub use matcher::{Moderation, Moderator, ScoreAccumulator, TermMatch, TermMatcher};
pub use probe::{ModerationProbe, ProbeFeatures, ProbeFit, ProbeHead, ProbeLabels, ProbeOpinion};
pub use term_list::{TermEntry, TermKind, TermList};
