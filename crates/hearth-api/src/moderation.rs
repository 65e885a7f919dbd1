//! `POST /v1/moderations`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ContentPart;

/// `input`: one text, several, or typed parts (text only here).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModerationInput {
    /// One text.
    Text(String),
    /// Several texts, one result each.
    Texts(Vec<String>),
    /// Typed parts (`{"type": "text", "text": ...}`), one result each.
    Parts(Vec<ContentPart>),
}

/// A moderation request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModerationRequest {
    /// What to classify.
    pub input: ModerationInput,
    /// Which classifier (ignored: there is one).
    #[serde(default)]
    pub model: Option<String>,
}

/// A moderation response: one result per input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModerationResponse {
    /// `modr-...`.
    pub id: String,
    /// The classifier.
    pub model: String,
    /// One per input, in order.
    pub results: Vec<ModerationResult>,
}

/// The verdict on one input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModerationResult {
    /// Whether any category is flagged.
    pub flagged: bool,
    /// Category name → flagged.
    pub categories: BTreeMap<String, bool>,
    /// Category name → score in 0..=1.
    pub category_scores: BTreeMap<String, f32>,
    /// Category name → input types the verdict applies to (`["text"]`).
    pub category_applied_input_types: BTreeMap<String, Vec<String>>,
}
