//! The distillation loss on one batch of student logits:
//!
//! `alpha · KL(teacher_T ‖ student_T) · (T² if scale_t2) + (1 − alpha) · CE(hard labels)`
//!
//! The teacher side is its top-k tokens per position ([`super::cache`]): their
//! log-probabilities at temperature 1, divided by `T` and renormalised over the k
//! tokens. The student side is its full softmax at `T`, read at those k tokens. The
//! sum `Σ q log(q / p)` over the k tokens is then a KL divergence between the
//! renormalised teacher and the student restricted to the teacher's top k: zero only
//! when the student puts all its mass there in the teacher's proportions. With k equal
//! to the vocabulary it is the exact KL.
//!
//! Hinton et al. multiply the soft term by `T²` so its gradients keep their size as
//! `T` grows; TRL's `GKDTrainer` and Axolotl's KD plugin don't. `scale_t2` chooses.

use candle_core::{DType, Device, Tensor};

use crate::model::{cross_entropy_sum, log_sum_exp};
use crate::{Error, Result};

/// The loss's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdLoss {
    /// Weight of the soft (KL) term; `1 − alpha` weighs the hard-label cross-entropy.
    pub alpha: f64,
    /// Temperature of both distributions in the KL term.
    pub temperature: f64,
    /// Multiply the KL term by `T²` (Hinton's convention).
    pub scale_t2: bool,
}

impl KdLoss {
    /// Cross-entropy on hard labels only (the baseline student).
    pub const HARD_LABELS: KdLoss = KdLoss {
        alpha: 0.0,
        temperature: 1.0,
        scale_t2: false,
    };

    /// Fails on an alpha outside `[0, 1]` or a temperature that is not positive.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::Config(format!(
                "alpha {} must be in [0, 1]",
                self.alpha
            )));
        }
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return Err(Error::Config(format!(
                "temperature {} must be positive",
                self.temperature
            )));
        }
        Ok(())
    }

    /// The factor on the KL term: `alpha`, times `T²` when scaled.
    pub fn kl_weight(&self) -> f64 {
        let t2 = if self.scale_t2 {
            self.temperature * self.temperature
        } else {
            1.0
        };
        self.alpha * t2
    }
}

/// The teacher's top-k tokens for `n` positions, row-major `[n, k]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TeacherRows {
    /// Tokens per position.
    pub k: usize,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Their log-probabilities under the teacher at temperature 1.
    pub logp: Vec<f32>,
}

/// Sums over the positions of a batch.
#[derive(Debug, Clone)]
pub struct LossSums {
    /// The weighted loss to differentiate (a scalar tensor).
    pub total: Tensor,
    /// Sum of the KL terms (unweighted; 0 when there is no teacher).
    pub kl: f64,
    /// Sum of the hard-label cross-entropies.
    pub ce: f64,
}

/// The loss of `logits` (`[n, vocab]`) against the next tokens `targets` and, when
/// `alpha > 0`, the teacher's rows for the same positions.
pub fn loss_sums(
    logits: &Tensor,
    targets: &[u32],
    teacher: Option<&TeacherRows>,
    cfg: &KdLoss,
) -> Result<LossSums> {
    let n = targets.len();
    let ce = cross_entropy_sum(logits, targets)?;
    let ce_val = scalar(&ce)?;
    let mut total = ce.affine(1.0 - cfg.alpha, 0.0)?;
    let mut kl_val = 0.0;
    if cfg.alpha > 0.0 {
        let rows = teacher.ok_or_else(|| {
            Error::Config("distillation with alpha > 0 needs the teacher's top-k rows".into())
        })?;
        if rows.k == 0 || rows.ids.len() != n * rows.k || rows.logp.len() != n * rows.k {
            return Err(Error::Config(format!(
                "teacher rows hold {} values for {n} positions of k = {}",
                rows.ids.len(),
                rows.k
            )));
        }
        let kl = kl_sum(logits, rows, cfg.temperature)?;
        kl_val = scalar(&kl)?;
        total = total.add(&kl.affine(cfg.kl_weight(), 0.0)?)?;
    }
    Ok(LossSums {
        total,
        kl: kl_val,
        ce: ce_val,
    })
}

/// `Σ_rows Σ_k q (log q − log p_student,T)` with `q` the teacher's renormalised top k.
fn kl_sum(logits: &Tensor, rows: &TeacherRows, t: f64) -> Result<Tensor> {
    let (n, k) = (rows.ids.len() / rows.k, rows.k);
    let mut q = Vec::with_capacity(n * k);
    let mut q_log_q = 0f64;
    for lp in rows.logp.chunks_exact(k) {
        let s: Vec<f64> = lp.iter().map(|&v| v as f64 / t).collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for v in s {
            let lq = v - lse;
            q_log_q += lq.exp() * lq;
            q.push(lq.exp());
        }
    }
    let dtype = logits.dtype();
    let q = Tensor::from_vec(q, (n, k), &Device::Cpu)?.to_dtype(dtype)?;
    let ids = Tensor::from_slice(&rows.ids, (n, k), &Device::Cpu)?;
    let s = logits.affine(1.0 / t, 0.0)?;
    let log_p = s.gather(&ids, 1)?.broadcast_sub(&log_sum_exp(&s)?)?;
    let cross = q.mul(&log_p)?.sum_all()?;
    Ok(cross.neg()?.affine(1.0, q_log_q)?)
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// log softmax of `row / t` at `i`, by hand.
    fn log_softmax(row: &[f64], t: f64, i: usize) -> f64 {
        let z: f64 = row.iter().map(|v| (v / t).exp()).sum();
        row[i] / t - z.ln()
    }

    #[test]
    fn matches_a_hand_computation() {
        let logits = [[1.0, 2.0, 0.5, -1.0], [0.0, -0.5, 3.0, 1.0]];
        let targets = [1u32, 3];
        // Teacher top 2 per row (log-probs at T = 1 of some 4-token distribution).
        let teacher = TeacherRows {
            k: 2,
            ids: vec![1, 0, 2, 3],
            logp: vec![-0.3, -1.6, -0.2, -2.0],
        };
        let t = 2.0;
        let cfg = KdLoss {
            alpha: 0.25,
            temperature: t,
            scale_t2: true,
        };
        let flat: Vec<f64> = logits.iter().flatten().copied().collect();
        let x = Tensor::from_vec(flat, (2, 4), &Device::Cpu).unwrap();
        let got = loss_sums(&x, &targets, Some(&teacher), &cfg).unwrap();
        let (mut ce, mut kl) = (0.0, 0.0);
        for r in 0..2 {
            ce -= log_softmax(&logits[r], 1.0, targets[r] as usize);
            let (a, b) = (
                teacher.logp[2 * r] as f64 / t,
                teacher.logp[2 * r + 1] as f64 / t,
            );
            let qa = a.exp() / (a.exp() + b.exp());
            let qb = 1.0 - qa;
            let pa = log_softmax(&logits[r], t, teacher.ids[2 * r] as usize);
            let pb = log_softmax(&logits[r], t, teacher.ids[2 * r + 1] as usize);
            kl += qa * (qa.ln() - pa) + qb * (qb.ln() - pb);
        }
        let want = 0.25 * kl * 4.0 + 0.75 * ce;
        let total = got.total.to_scalar::<f64>().unwrap();
        assert!((got.ce - ce).abs() < 1e-9, "{} vs {ce}", got.ce);
        assert!((got.kl - kl).abs() < 1e-6, "{} vs {kl}", got.kl);
        assert!((total - want).abs() < 1e-6, "{total} vs {want}");
        // Without the T² factor (TRL / Axolotl), the KL term is 4 times smaller.
        let trl = KdLoss {
            scale_t2: false,
            ..cfg
        };
        let got = loss_sums(&x, &targets, Some(&teacher), &trl).unwrap();
        let total = got.total.to_scalar::<f64>().unwrap();
        assert!((total - (0.25 * kl + 0.75 * ce)).abs() < 1e-6);
        // Hard labels only: the cross-entropy, and no teacher needed.
        let hard = loss_sums(&x, &targets, None, &KdLoss::HARD_LABELS).unwrap();
        assert!((hard.total.to_scalar::<f64>().unwrap() - ce).abs() < 1e-9);
    }

    #[test]
    fn kl_is_zero_when_the_student_is_the_teacher() {
        // A student whose logits are the teacher's log-probs, k = vocab: KL = 0 at any T.
        let logp: Vec<f32> = {
            let l = [2.0f32, 0.5, -1.0];
            let z = l.iter().map(|v| v.exp()).sum::<f32>().ln();
            l.iter().map(|v| v - z).collect()
        };
        let rows = TeacherRows {
            k: 3,
            ids: vec![0, 1, 2],
            logp: logp.clone(),
        };
        let x = Tensor::from_vec(logp, (1, 3), &Device::Cpu).unwrap();
        for t in [1.0, 3.0] {
            let cfg = KdLoss {
                alpha: 1.0,
                temperature: t,
                scale_t2: false,
            };
            let got = loss_sums(&x, &[0], Some(&rows), &cfg).unwrap();
            assert!(got.kl.abs() < 1e-6, "T = {t}: {}", got.kl);
        }
        assert!(KdLoss {
            alpha: 1.5,
            ..KdLoss::HARD_LABELS
        }
        .check()
        .is_err());
    }
}
