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
