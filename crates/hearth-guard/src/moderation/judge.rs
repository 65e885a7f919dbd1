//! A second opinion from an LLM judge, and how its scores merge with the term lists'.
//!
//! The server owns the model, so it implements [`ModerationJudge`] (typically: build a
//! prompt with [`LlamaGuardPrompt`](crate::moderation::LlamaGuardPrompt), generate
//! greedily with a few tokens, parse with
//! [`LlamaGuardVerdict::parse`](crate::moderation::LlamaGuardVerdict::parse), and return
//! [`LlamaGuardVerdict::scores`](crate::moderation::LlamaGuardVerdict::scores)).
//! Async callers that cannot block can skip the trait and call
//! [`merge_scores`] and [`Moderator::verdict`] themselves.

use crate::error::Result;
use crate::moderation::category::{Category, CategoryScores};
use crate::moderation::matcher::{Moderation, Moderator};

/// Anything that scores a text per category (an LLM judge, a classifier).
pub trait ModerationJudge: Send + Sync {
    /// Scores `text`; errors should be [`Error::Judge`](crate::Error::Judge) with a
    /// message that holds no user text.
    fn judge(&self, text: &str) -> Result<CategoryScores>;
}

/// How term-list scores and judge scores combine, per category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MergeRule {
    /// The higher of the two: either source can flag (better recall).
    Max,
    /// `(1 - judge_weight) * terms + judge_weight * judge`: with `judge_weight` above
    /// the threshold's complement the judge can overrule a term match (better precision).
    Weighted {
        /// Weight of the judge's score in `0..=1`.
        judge_weight: f32,
    },
    /// The judge's score alone; the term lists only explain (their matches are kept).
    JudgeOnly,
    /// The higher of the two, but the judge counts only where the term lists saw some
    /// evidence (a score above zero in any category): a second opinion on texts the
    /// lists find suspicious, not a source of flags on texts they find clean. On OpenAI's
    /// samples it keeps the recall [`Max`](Self::Max) adds with fewer false flags
    /// (docs/GUARD.md).
    Confirm,
}

/// Merges two score sets category by category with `rule`.
pub fn merge_scores(
    terms: &CategoryScores,
    judge: &CategoryScores,
    rule: MergeRule,
) -> CategoryScores {
    let mut out = CategoryScores::default();
    let suspicious = Category::ALL.iter().any(|&c| terms.get(c) > 0.0);
    for c in Category::ALL {
        let (t, j) = (terms.get(c), judge.get(c));
        let s = match rule {
            MergeRule::Max => t.max(j),
            MergeRule::Weighted { judge_weight } => {
                let w = judge_weight.clamp(0.0, 1.0);
                (1.0 - w) * t + w * j
            }
            MergeRule::JudgeOnly => j,
            MergeRule::Confirm if suspicious => t.max(j),
            MergeRule::Confirm => t,
        };
        out.set(c, s);
    }
    out
}

/// The judge's veto: where it gave "unsafe" a probability below `veto_below` (it is
/// confident the text is safe), every score is capped at that probability, so a term
/// match alone no longer flags the text. Elsewhere `scores` are returned as they are.
///
/// Llama Guard's own score is this probability: of "unsafe" against "safe" as the first
/// token of its reply ([`p_unsafe`]). On OpenAI's samples, with SmolLM2's judge adapter,
/// a veto below 0.1 removed five term-list false flags and no true one on the dev half,
/// but on the held-out half it removed none and cost one true flag (docs/GUARD.md).
pub fn veto(scores: &CategoryScores, p_unsafe: f32, veto_below: f32) -> CategoryScores {
    if p_unsafe >= veto_below {
        return *scores;
    }
    let mut out = CategoryScores::default();
    for c in Category::ALL {
        out.set(c, scores.get(c).min(p_unsafe.max(0.0)));
    }
    out
}

/// The probability of "unsafe" against "safe" from a judge's first-token alternatives
/// (`(token text, log-probability)`, as many as were reported): tokens that begin one of
/// the two words ("uns", "unsafe"; "s", "safe"), leading spaces and case ignored. `None`
/// when neither word is among them.
pub fn p_unsafe<T: AsRef<str>>(first_token: impl IntoIterator<Item = (T, f32)>) -> Option<f32> {
    let (mut unsafe_p, mut safe_p) = (0.0f32, 0.0f32);
    for (text, logprob) in first_token {
        let t = text.as_ref().trim_start().to_lowercase();
        let starts = |word: &str| !t.is_empty() && (word.starts_with(&t) || t.starts_with(word));
        if t.len() >= 2 && starts("unsafe") {
            unsafe_p += logprob.exp();
        } else if starts("safe") {
            safe_p += logprob.exp();
        }
    }
    (unsafe_p + safe_p > 0.0).then(|| unsafe_p / (unsafe_p + safe_p))
}

impl Moderator {
    /// Term-list moderation of `text` merged with `judge`'s scores by `rule`. A judge
    /// error is returned as is; callers that prefer to degrade use [`moderate`](Self::moderate).
    pub fn moderate_with(
        &self,
        text: &str,
        judge: &dyn ModerationJudge,
        rule: MergeRule,
    ) -> Result<Moderation> {
        let terms = self.moderate(text);
        let judged = judge.judge(text)?;
        Ok(self.verdict(merge_scores(&terms.scores, &judged, rule), terms.matches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moderation::{LlamaGuardVerdict, TermList};
    use crate::Error;

    /// A judge that answers with a fixed Llama Guard reply, as a served model would.
    struct ReplyJudge(&'static str);

    impl ModerationJudge for ReplyJudge {
        fn judge(&self, _text: &str) -> Result<CategoryScores> {
            Ok(LlamaGuardVerdict::parse(self.0)?.scores())
        }
    }

    fn moderator() -> Moderator {
        Moderator::new(&TermList::parse("t", "[violence]\n0.6 punch\n").unwrap()).unwrap()
    }

    #[test]
    fn max_lets_either_source_flag() {
        let m = moderator();
        let v = m
            .moderate_with("a punch", &ReplyJudge("safe"), MergeRule::Max)
            .unwrap();
        assert!(v.categories.get(Category::Violence));
        let v = m
            .moderate_with("a plan", &ReplyJudge("unsafe\nS10"), MergeRule::Max)
            .unwrap();
        assert!(v.categories.get(Category::Hate));
        assert!(!v.categories.get(Category::Violence));
    }

    #[test]
    fn weighted_and_judge_only_let_the_judge_overrule() {
        let m = moderator();
        let rule = MergeRule::Weighted { judge_weight: 0.6 };
        let v = m
            .moderate_with("a punch", &ReplyJudge("safe"), rule)
            .unwrap();
        assert!(!v.flagged);
        assert!((v.scores.get(Category::Violence) - 0.24).abs() < 1e-6);
        let v = m
            .moderate_with("a punch", &ReplyJudge("safe"), MergeRule::JudgeOnly)
            .unwrap();
        assert!(!v.flagged);
        assert_eq!(v.matches.len(), 1);
    }

    #[test]
    fn a_confident_safe_verdict_vetoes_term_matches() {
        let m = moderator();
        let terms = m.moderate("a punch").scores;
        assert!(terms.get(Category::Violence) >= 0.5);
        let kept = veto(&terms, 0.3, 0.1);
        assert_eq!(kept, terms);
        let vetoed = veto(&terms, 0.04, 0.1);
        assert!((vetoed.get(Category::Violence) - 0.04).abs() < 1e-6);
        assert!(!m.verdict(vetoed, Vec::new()).flagged);
    }

    #[test]
    fn p_unsafe_from_first_token_alternatives() {
        // SmolLM2's judge adapter splits "unsafe" as "uns" + "afe".
        let p = p_unsafe([("safe", 0.5f32.ln()), ("uns", 0.25f32.ln()), ("S", -7.0)]).unwrap();
        assert!((p - 1.0 / 3.0).abs() < 1e-3, "{p}");
        let p = p_unsafe([(" Unsafe", 0.9f32.ln()), (" s", 0.1f32.ln())]).unwrap();
        assert!((p - 0.9).abs() < 1e-3, "{p}");
        assert_eq!(p_unsafe([("The", -0.1f32), ("I", -3.0)]), None);
    }

    #[test]
    fn confirm_needs_some_term_evidence() {
        let m = moderator();
        // A clean text: the judge alone cannot flag it.
        let v = m
            .moderate_with("a plan", &ReplyJudge("unsafe\nS10"), MergeRule::Confirm)
            .unwrap();
        assert!(!v.flagged);
        // "punch" scores 0.6 for violence: the judge's hate verdict now counts too.
        let m = Moderator::new(&TermList::parse("t", "[violence]\n0.3 punch\n").unwrap()).unwrap();
        let v = m
            .moderate_with("a punch", &ReplyJudge("unsafe\nS10"), MergeRule::Confirm)
            .unwrap();
        assert!(v.categories.get(Category::Hate) && !v.categories.get(Category::Violence));
    }

    #[test]
    fn judge_errors_propagate() {
        let e = moderator()
            .moderate_with("x", &ReplyJudge("I cannot help"), MergeRule::Max)
            .unwrap_err();
        assert!(matches!(e, Error::Judge { .. }), "{e}");
    }
}
