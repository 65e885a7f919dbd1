//! A linear probe as the moderation judge: logistic-regression heads over a language
//! model's pooled hidden states.
//!
//! The probe sees numbers, not the model: whoever holds the model (the `hearth guard
//! train-probe` command, the server) turns a text into its feature vector (the mean of
//! the final normalised hidden states, as [`ProbeFeatures`] names it) and hands it here.
//! One head decides whether a text is flagged; one head per labelled category decides
//! which category it is flagged for. [`ModerationProbe::scores`] maps the flagged head's
//! probability so that the probe's own threshold lands on the moderator's 0.5, and
//! [`ModerationProbe::merge`] joins them with other scores: the higher per category,
//! except where the probe is confident the text is safe (below its veto), which caps them.
//!
//! Training is L2-regularised logistic regression (bias unpenalised) on standardised
//! features, solved by Newton's method: the optimum is unique, so a probe trained twice
//! on the same features is the same probe.

use crate::error::{Error, Result};
use crate::moderation::category::{Category, CategoryScores};
use crate::moderation::judge::{merge_scores, veto, MergeRule};

mod logistic;

use logistic::{logistic_head, standardisation, standardised};

/// A category gets its own head only with at least this many positive examples.
const MIN_POSITIVES: usize = 3;

/// What the features are: the model they come from and how they were pooled. The server
/// refuses a probe whose `model` is not the one it serves.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeFeatures {
    /// The model's identity (architecture, width, depth and name), as the trainer wrote it.
    pub model: String,
    /// Feature dimensions (the model's `d_model`).
    pub dim: usize,
    /// Tokens of each text the model reads at most (the rest is cut off).
    pub max_tokens: usize,
    /// How positions are pooled: `mean` of the normalised hidden states, BOS left out.
    pub pooling: String,
    /// After how many blocks the hidden states are read (`None`: all, the final ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

/// One logistic-regression head: `p = sigmoid(w . z + b)` on standardised features `z`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeHead {
    /// `flagged`, or an OpenAI category name.
    pub label: String,
    /// One weight per feature.
    pub weights: Vec<f32>,
    /// The intercept.
    pub bias: f32,
}

impl ProbeHead {
    fn probability(&self, z: &[f32]) -> f32 {
        let t: f32 = self.weights.iter().zip(z).map(|(w, x)| w * x).sum::<f32>() + self.bias;
        1.0 / (1.0 + (-t).exp())
    }
}

/// One training example's labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeLabels {
    /// Flagged at all.
    pub flagged: bool,
    /// The categories it is flagged for.
    pub categories: Vec<Category>,
}

/// Settings of [`ModerationProbe::fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeFit {
    /// L2 penalty `lambda / 2 * |w|^2` beside the summed log-loss (scikit-learn's `1/C`).
    pub l2: f64,
    /// The flagged head's probability at which a text is flagged.
    pub threshold: f32,
    /// Below this probability of the flagged head, other sources' scores are capped
    /// (0: no veto).
    pub veto_below: f32,
}

impl Default for ProbeFit {
    /// The settings chosen on the dev half of OpenAI's samples by 10-fold
    /// cross-validation (docs/GUARD.md).
    fn default() -> Self {
        ProbeFit {
            l2: 100.0,
            threshold: 0.7,
            veto_below: 0.2,
        }
    }
}

impl ProbeFit {
    /// Fails unless the penalty is positive, the threshold in (0, 1) and the veto in
    /// `[0, threshold)`.
    pub fn check(&self) -> Result<()> {
        let valid = self.l2 > 0.0
            && self.l2.is_finite()
            && self.threshold > 0.0
            && self.threshold < 1.0
            && (0.0..self.threshold).contains(&self.veto_below);
        if valid {
            return Ok(());
        }
        Err(Error::Probe {
            problem: format!(
                "the L2 penalty must be positive, the threshold in (0, 1) and the veto in [0, threshold): got {}, {} and {}",
                self.l2, self.threshold, self.veto_below
            ),
        })
    }
}

/// What a probe made of one text: per-category scores and the flagged head's probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeOpinion {
    /// As [`ModerationProbe::scores`] gives them.
    pub scores: CategoryScores,
    /// The flagged head's probability.
    pub p_flagged: f32,
}

/// A trained probe: standardisation, the flagged head and the category heads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModerationProbe {
    /// What the features are.
    pub features: ProbeFeatures,
    /// The flagged head's probability at which a text is flagged.
    pub threshold: f32,
    /// Below this probability of the flagged head, [`merge`](Self::merge) caps the other
    /// sources' scores at it (0: no veto).
    #[serde(default)]
    pub veto_below: f32,
    /// Subtracted from each feature before scaling.
    pub center: Vec<f32>,
    /// Each centred feature is divided by this.
    pub scale: Vec<f32>,
    /// The `flagged` head.
    pub flagged: ProbeHead,
    /// One head per category with enough positive examples.
    pub categories: Vec<ProbeHead>,
}

impl ModerationProbe {
    /// Trains a probe on `features` (one vector of `spec.dim` values per example) and
    /// their `labels`.
    pub fn fit(
        spec: ProbeFeatures,
        features: &[Vec<f32>],
        labels: &[ProbeLabels],
        fit: &ProbeFit,
    ) -> Result<ModerationProbe> {
        let bad = |problem: String| Err(Error::Probe { problem });
        if features.len() != labels.len() {
            return bad(format!(
                "{} feature vectors for {} labelled examples",
                features.len(),
                labels.len()
            ));
        }
        if let Some(v) = features.iter().find(|v| v.len() != spec.dim) {
            return bad(format!(
                "a feature vector has {} values, not {}",
                v.len(),
                spec.dim
            ));
        }
        fit.check()?;
        let positives = labels.iter().filter(|l| l.flagged).count();
        if positives == 0 || positives == labels.len() {
            return bad(format!(
                "{positives} of {} examples are flagged: both kinds are needed",
                labels.len()
            ));
        }
        let (center, scale) = standardisation(features, spec.dim);
        let z: Vec<Vec<f64>> = features
            .iter()
            .map(|v| standardised(v, &center, &scale))
            .collect();
        let y: Vec<bool> = labels.iter().map(|l| l.flagged).collect();
        let flagged = logistic_head("flagged", &z, &y, fit.l2)?;
        let mut categories = Vec::new();
        for c in Category::ALL {
            let y: Vec<bool> = labels.iter().map(|l| l.categories.contains(&c)).collect();
            let n = y.iter().filter(|&&t| t).count();
            if n >= MIN_POSITIVES && n < y.len() {
                categories.push(logistic_head(c.name(), &z, &y, fit.l2)?);
            }
        }
        if categories.is_empty() {
            return bad(format!(
                "no category has {MIN_POSITIVES} or more labelled examples, so a flag could not be named"
            ));
        }
        Ok(ModerationProbe {
            features: spec,
            threshold: fit.threshold,
            veto_below: fit.veto_below,
            center,
            scale,
            flagged,
            categories,
        })
    }

    /// Out-of-fold probabilities of the flagged head: example `i` is scored by a head
    /// (and standardisation) fitted on every example outside fold `i % folds`. What
    /// `hearth guard train-probe` reports its held-out precision and recall from.
    pub fn out_of_fold(
        features: &[Vec<f32>],
        labels: &[ProbeLabels],
        fit: &ProbeFit,
        folds: usize,
    ) -> Result<Vec<f32>> {
        if folds < 2 || folds > features.len() || features.len() != labels.len() {
            return Err(Error::Probe {
                problem: format!(
                    "cannot cross-validate {} examples in {folds} folds",
                    features.len()
                ),
            });
        }
        let dim = features[0].len();
        let mut out = vec![0f32; features.len()];
        for fold in 0..folds {
            let train: Vec<usize> = (0..features.len()).filter(|i| i % folds != fold).collect();
            let rows: Vec<Vec<f32>> = train.iter().map(|&i| features[i].clone()).collect();
            let (center, scale) = standardisation(&rows, dim);
            let zs: Vec<Vec<f64>> = rows
                .iter()
                .map(|v| standardised(v, &center, &scale))
                .collect();
            let y: Vec<bool> = train.iter().map(|&i| labels[i].flagged).collect();
            let head = logistic_head("flagged", &zs, &y, fit.l2)?;
            for i in (0..features.len()).filter(|i| i % folds == fold) {
                let zi: Vec<f32> = standardised(&features[i], &center, &scale)
                    .iter()
                    .map(|&x| x as f32)
                    .collect();
                out[i] = head.probability(&zi);
            }
        }
        Ok(out)
    }

    /// Reads a probe saved by [`to_json`](Self::to_json), checking it is whole.
    pub fn from_json(text: &str) -> Result<ModerationProbe> {
        let probe: ModerationProbe = serde_json::from_str(text).map_err(|e| Error::Probe {
            problem: format!("not a probe file: {e}"),
        })?;
        let d = probe.features.dim;
        let heads = std::iter::once(&probe.flagged).chain(&probe.categories);
        let whole = probe.center.len() == d
            && probe.scale.len() == d
            && probe.scale.iter().all(|s| *s > 0.0)
            && heads.clone().all(|h| h.weights.len() == d)
            && probe.threshold > 0.0
            && probe.threshold < 1.0
            && (0.0..probe.threshold).contains(&probe.veto_below);
        if !whole {
            return Err(Error::Probe {
                problem: format!(
                    "the probe file's vectors do not all have {d} values, or its threshold is not in (0, 1) or its veto not below the threshold"
                ),
            });
        }
        if let Some(h) = probe
            .categories
            .iter()
            .find(|h| Category::from_name(&h.label).is_none())
        {
            return Err(Error::Probe {
                problem: format!("unknown category `{}` in the probe file", h.label),
            });
        }
        Ok(probe)
    }

    /// The probe as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a probe always serialises")
    }

    fn standardise(&self, features: &[f32]) -> Result<Vec<f32>> {
        if features.len() != self.features.dim {
            return Err(Error::Probe {
                problem: format!(
                    "{} feature values given, the probe takes {}",
                    features.len(),
                    self.features.dim
                ),
            });
        }
        Ok(features
            .iter()
            .zip(self.center.iter().zip(&self.scale))
            .map(|(x, (c, s))| (x - c) / s)
            .collect())
    }

    /// The flagged head's probability for one text's features.
    pub fn p_flagged(&self, features: &[f32]) -> Result<f32> {
        Ok(self.flagged.probability(&self.standardise(features)?))
    }

    /// The probe's opinion of one text's features: [`scores`](Self::scores) and the
    /// flagged head's probability (the features standardised and each head run once).
    pub fn opinion(&self, features: &[f32]) -> Result<ProbeOpinion> {
        let z = self.standardise(features)?;
        let p_flagged = self.flagged.probability(&z);
        Ok(ProbeOpinion {
            scores: self.scores_of(&z, p_flagged),
            p_flagged,
        })
    }

    /// Joins `opinion` with `others` (the term lists', a judge's): the higher score per
    /// category, all capped at the flagged head's probability where it is below the
    /// probe's veto (so the other sources alone cannot flag a text the probe finds safe).
    pub fn merge(&self, others: &CategoryScores, opinion: &ProbeOpinion) -> CategoryScores {
        let joined = merge_scores(others, &opinion.scores, MergeRule::Max);
        veto(&joined, opinion.p_flagged, self.veto_below)
    }

    /// Per-category scores for one text's features: the most likely category gets the
    /// flagged head's probability, mapped so that the probe's threshold becomes 0.5;
    /// every other category gets its own head's probability, capped at that score (so
    /// a text is flagged exactly when the flagged head reaches the threshold).
    pub fn scores(&self, features: &[f32]) -> Result<CategoryScores> {
        Ok(self.opinion(features)?.scores)
    }

    /// [`scores`](Self::scores) of standardised features whose flagged probability is
    /// `p_flagged`.
    fn scores_of(&self, z: &[f32], p_flagged: f32) -> CategoryScores {
        let flagged = calibrate(p_flagged, self.threshold);
        let mut out = CategoryScores::default();
        let mut top: Option<(Category, f32)> = None;
        for head in &self.categories {
            let Some(c) = Category::from_name(&head.label) else {
                continue;
            };
            let p = head.probability(z);
            out.set(c, p.min(flagged));
            if top.is_none_or(|(_, best)| p > best) {
                top = Some((c, p));
            }
        }
        if let Some((c, _)) = top {
            out.set(c, flagged);
        }
        out
    }
}

/// Maps `p` piecewise linearly so that `threshold` becomes 0.5 (0 and 1 stay put).
fn calibrate(p: f32, threshold: f32) -> f32 {
    if p < threshold {
        0.5 * p / threshold
    } else {
        0.5 + 0.5 * (p - threshold) / (1.0 - threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dim: usize) -> ProbeFeatures {
        ProbeFeatures {
            model: "test".into(),
            dim,
            max_tokens: 16,
            pooling: "mean".into(),
            depth: None,
        }
    }

    /// Two clusters in 3 dimensions: flagged ones (harassment) around +x, others around -x.
    fn clusters() -> (Vec<Vec<f32>>, Vec<ProbeLabels>) {
        let mut f = Vec::new();
        let mut l = Vec::new();
        for i in 0..20 {
            let jitter = (i as f32 * 0.37).sin() * 0.5;
            let pos = i % 2 == 0;
            let x = if pos { 2.0 } else { -2.0 };
            f.push(vec![x + jitter, jitter * 3.0, 10.0 + jitter]);
            l.push(ProbeLabels {
                flagged: pos,
                categories: if pos {
                    vec![Category::Harassment]
                } else {
                    vec![]
                },
            });
        }
        (f, l)
    }

    #[test]
    fn separates_two_clusters_and_names_the_category() {
        let (f, l) = clusters();
        let fit = ProbeFit {
            l2: 1.0,
            threshold: 0.6,
            veto_below: 0.0,
        };
        let probe = ModerationProbe::fit(spec(3), &f, &l, &fit).unwrap();
        assert_eq!(probe.categories.len(), 1);
        assert!(probe.p_flagged(&[2.5, 0.0, 10.0]).unwrap() > 0.9);
        assert!(probe.p_flagged(&[-2.5, 0.0, 10.0]).unwrap() < 0.1);
        let s = probe.scores(&[2.5, 0.0, 10.0]).unwrap();
        assert_eq!(s.top().0, Category::Harassment);
        assert!(s.get(Category::Harassment) >= 0.5);
        assert!(probe.scores(&[-2.5, 0.0, 10.0]).unwrap().top().1 < 0.5);
    }

    #[test]
    fn newton_reaches_the_optimum() {
        // At the optimum the gradient of loss + l2/2 |w|^2 vanishes.
        let (f, l) = clusters();
        let probe = ModerationProbe::fit(spec(3), &f, &l, &ProbeFit::default()).unwrap();
        let z: Vec<Vec<f32>> = f.iter().map(|v| probe.standardise(v).unwrap()).collect();
        let mut grad = [0f64; 4];
        for (row, lab) in z.iter().zip(&l) {
            let r = f64::from(probe.flagged.probability(row)) - f64::from(u8::from(lab.flagged));
            for i in 0..3 {
                grad[i] += r * f64::from(row[i]);
            }
            grad[3] += r;
        }
        for (g, w) in grad.iter_mut().zip(&probe.flagged.weights) {
            *g += 100.0 * f64::from(*w);
        }
        assert!(grad.iter().all(|g| g.abs() < 1e-3), "{grad:?}");
    }

    #[test]
    fn out_of_fold_scores_every_example_unseen() {
        let (f, l) = clusters();
        let fit = ProbeFit {
            l2: 1.0,
            threshold: 0.5,
            veto_below: 0.0,
        };
        let p = ModerationProbe::out_of_fold(&f, &l, &fit, 5).unwrap();
        assert_eq!(p.len(), f.len());
        let right = p.iter().zip(&l).filter(|(p, l)| (**p >= 0.5) == l.flagged);
        assert_eq!(right.count(), f.len());
        assert!(ModerationProbe::out_of_fold(&f, &l, &fit, 1).is_err());
    }

    #[test]
    fn merge_takes_the_higher_score_unless_the_probe_vetoes() {
        let (f, l) = clusters();
        let fit = ProbeFit {
            l2: 1.0,
            threshold: 0.6,
            veto_below: 0.2,
        };
        let probe = ModerationProbe::fit(spec(3), &f, &l, &fit).unwrap();
        let mut lists = CategoryScores::default();
        lists.set(Category::Violence, 0.9);
        // Flagged by the probe: its harassment joins the lists' violence.
        let unsafe_text = probe.opinion(&[2.5, 0.0, 10.0]).unwrap();
        let joined = probe.merge(&lists, &unsafe_text);
        assert_eq!(joined.get(Category::Violence), 0.9);
        assert!(joined.get(Category::Harassment) >= 0.5);
        // Confidently safe: the lists' violence is capped below the threshold.
        let safe_text = probe.opinion(&[-2.5, 0.0, 10.0]).unwrap();
        assert!(safe_text.p_flagged < 0.2);
        assert!(probe.merge(&lists, &safe_text).get(Category::Violence) < 0.2);
        // Without a veto the lists' score stands.
        let no_veto = ModerationProbe {
            veto_below: 0.0,
            ..probe.clone()
        };
        assert_eq!(
            no_veto.merge(&lists, &safe_text).get(Category::Violence),
            0.9
        );
        let bad = ProbeFit {
            veto_below: 0.7,
            ..fit
        };
        assert!(ModerationProbe::fit(spec(3), &f, &l, &bad).is_err());
    }

    #[test]
    fn threshold_maps_to_one_half() {
        assert!((calibrate(0.7, 0.7) - 0.5).abs() < 1e-6);
        assert!(calibrate(0.69, 0.7) < 0.5);
        assert!((calibrate(1.0, 0.7) - 1.0).abs() < 1e-6);
        assert_eq!(calibrate(0.0, 0.7), 0.0);
    }

    #[test]
    fn json_round_trip_and_checks() {
        let (f, l) = clusters();
        let probe = ModerationProbe::fit(spec(3), &f, &l, &ProbeFit::default()).unwrap();
        let back = ModerationProbe::from_json(&probe.to_json()).unwrap();
        assert_eq!(back, probe);
        let mut short = probe.clone();
        short.center.pop();
        let err = ModerationProbe::from_json(&short.to_json()).unwrap_err();
        assert!(err.to_string().contains("3 values"), "{err}");
        assert!(ModerationProbe::from_json("{}").is_err());
        assert!(probe.scores(&[1.0, 2.0]).is_err());
    }

    #[test]
    fn refuses_one_sided_or_unnamed_training_sets() {
        let (f, mut l) = clusters();
        let all = vec![
            ProbeLabels {
                flagged: true,
                categories: vec![Category::Hate]
            };
            f.len()
        ];
        assert!(ModerationProbe::fit(spec(3), &f, &all, &ProbeFit::default()).is_err());
        l.iter_mut().for_each(|x| x.categories.clear());
        let err = ModerationProbe::fit(spec(3), &f, &l, &ProbeFit::default()).unwrap_err();
        assert!(err.to_string().contains("no category"), "{err}");
        assert!(ModerationProbe::fit(spec(4), &f, &l, &ProbeFit::default()).is_err());
    }
}
