//! The distillation loop: micro-batches packed from shuffled sequences, each with the
//! teacher's cached top-k rows, the [`KdLoss`] normalised by the target positions of
//! the whole optimizer step (so gradient accumulation equals one large batch), and
//! AdamW under warm-up and cosine decay on every trainable weight of the student.
//!
//! The baseline student runs the same loop with [`KdLoss::HARD_LABELS`]: from the same
//! initialisation (a [`Student::fork`]) and seed it sees the same batches in the same
//! order, so the two differ only in the loss.

use std::time::Instant;

use candle_core::Var;

use super::cache::TopKCache;
use super::loss::{loss_sums, KdLoss, LossSums, TeacherRows};
use super::student::Student;
use crate::encode::Encoded;
use crate::model::Packed;
use crate::optim::{lr_factor, AdamW};
use crate::trainer::{accumulate, update, zero_grads, Order, TrainConfig};
use crate::{Error, Result};

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq)]
pub struct KdStep {
    /// Steps taken, this one included.
    pub step: usize,
    /// Mean loss per target position (the weighted mix).
    pub loss: f64,
    /// Mean KL per target position (0 for hard labels).
    pub kl: f64,
    /// Mean hard-label cross-entropy per target position.
    pub ce: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens run through the student.
    pub tokens: usize,
    /// Seconds the step took.
    pub seconds: f64,
}

/// Mean losses per target position over a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdEval {
    /// The weighted mix.
    pub loss: f64,
    /// KL to the teacher's top k.
    pub kl: f64,
    /// Hard-label cross-entropy.
    pub ce: f64,
}

/// One student's training run.
#[derive(Debug)]
pub struct Distiller<'a> {
    student: &'a Student,
    cache: Option<&'a TopKCache>,
    data: &'a [Encoded],
    loss: KdLoss,
    cfg: TrainConfig,
    opt: AdamW,
    order: Order,
    step: usize,
    consumed: u64,
}

impl<'a> Distiller<'a> {
    /// A run over `data` (with the teacher's rows in `cache` unless `loss` is hard
    /// labels only).
    pub fn new(
        student: &'a Student,
        data: &'a [Encoded],
        cache: Option<&'a TopKCache>,
        loss: KdLoss,
        cfg: TrainConfig,
    ) -> Result<Self> {
        cfg.check()?;
        loss.check()?;
        if data.iter().all(|e| e.n_targets() == 0) {
            return Err(Error::Config(
                "no training sequence has a target token".into(),
            ));
        }
        if loss.alpha > 0.0 && cache.is_none() {
            return Err(Error::Config(
                "distillation with alpha > 0 needs the teacher's top-k cache".into(),
            ));
        }
        let sizes: Vec<usize> = student.vars().iter().map(|v| v.elem_count()).collect();
        Ok(Self {
            student,
            cache,
            data,
            loss,
            opt: AdamW::new(cfg.optim.clone(), &sizes),
            order: Order::new(cfg.seed, data.len()),
            cfg,
            step: 0,
            consumed: 0,
        })
    }

    /// Steps taken.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether every step has been taken.
    pub fn done(&self) -> bool {
        self.step >= self.cfg.steps
    }

    /// One optimizer step: `grad_accum` micro-batches of `batch_size` sequences.
    pub fn step(&mut self) -> Result<KdStep> {
        let t0 = Instant::now();
        let mut micro = Vec::with_capacity(self.cfg.grad_accum);
        for _ in 0..self.cfg.grad_accum {
            let mut seqs = Vec::with_capacity(self.cfg.batch_size);
            for _ in 0..self.cfg.batch_size {
                seqs.push(self.order.at(self.consumed));
                self.consumed += 1;
            }
            micro.push(seqs);
        }
        let n_targets: usize = micro
            .iter()
            .flatten()
            .map(|&i| self.data[i].n_targets())
            .sum();
        let vars: Vec<&Var> = self.student.vars();
        let mut grads = zero_grads(&vars);
        let (mut loss, mut kl, mut ce, mut tokens) = (0f64, 0f64, 0f64, 0usize);
        for seqs in &micro {
            let (batch, rows) = self.batch(seqs);
            tokens += batch.tokens.len();
            if batch.targets.is_empty() {
                continue;
            }
            let s = batch_loss(self.student, &batch, rows.as_ref(), &self.loss)?;
            loss += s
                .total
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
            kl += s.kl;
            ce += s.ce;
            let scaled = s.total.affine(1.0 / n_targets.max(1) as f64, 0.0)?;
            accumulate(&scaled.backward()?, &vars, &mut grads)?;
        }
        let lr = self.cfg.optim.lr * lr_factor(self.step, self.cfg.warmup, self.cfg.steps);
        let grad_norm = update(&mut self.opt, &vars, &mut grads, lr)?;
        self.step += 1;
        let per = 1.0 / n_targets.max(1) as f64;
        Ok(KdStep {
            step: self.step,
            loss: loss * per,
            kl: kl * per,
            ce: ce * per,
            lr,
            grad_norm,
            tokens,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The packed sequences and, when distilling, the teacher's rows in batch order.
    fn batch(&self, seqs: &[usize]) -> (Packed, Option<TeacherRows>) {
        batch_of(
            self.data,
            self.cache.filter(|_| self.loss.alpha > 0.0),
            seqs,
        )
    }

    /// Mean losses of the current student over `data` (with the teacher's rows in
    /// `cache`, if any), `batch_size` sequences per forward pass.
    pub fn evaluate(&self, data: &[Encoded], cache: Option<&TopKCache>) -> Result<KdEval> {
        evaluate(self.student, data, cache, &self.loss, self.cfg.batch_size)
    }
}

/// The loss sums of `student` on one packed batch.
fn batch_loss(
    student: &Student,
    b: &Packed,
    rows: Option<&TeacherRows>,
    loss: &KdLoss,
) -> Result<LossSums> {
    let idx: Vec<u32> = b.targets.iter().map(|&(r, _)| r as u32).collect();
    let tgt: Vec<u32> = b.targets.iter().map(|&(_, t)| t).collect();
    let logits = student.model.logits_at(b, &idx, None, None)?;
    loss_sums(&logits, &tgt, rows, loss)
}

fn batch_of(
    data: &[Encoded],
    cache: Option<&TopKCache>,
    seqs: &[usize],
) -> (Packed, Option<TeacherRows>) {
    let mut b = Packed::default();
    let mut rows = cache.map(|c| TeacherRows {
        k: c.header.k,
        ..TeacherRows::default()
    });
    for &i in seqs {
        let e = &data[i];
        b.push(&e.tokens, &e.mask);
        if let (Some(r), Some(c)) = (rows.as_mut(), cache) {
            let (ids, lp) = c.rows(i);
            r.ids.extend_from_slice(ids);
            r.logp.extend_from_slice(lp);
        }
    }
    (b, rows)
}

/// Mean losses of `student` over `data` under `loss` (the KL part needs `cache`, built
/// for `data`), `batch_size` sequences per forward pass.
pub fn evaluate(
    student: &Student,
    data: &[Encoded],
    cache: Option<&TopKCache>,
    loss: &KdLoss,
    batch_size: usize,
) -> Result<KdEval> {
    let (mut sum, mut kl, mut ce, mut n) = (0f64, 0f64, 0f64, 0usize);
    let all: Vec<usize> = (0..data.len()).collect();
    for seqs in all.chunks(batch_size.max(1)) {
        let (b, rows) = batch_of(data, cache.filter(|_| loss.alpha > 0.0), seqs);
        if b.targets.is_empty() {
            continue;
        }
        let s = batch_loss(student, &b, rows.as_ref(), loss)?;
        sum += s
            .total
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
        kl += s.kl;
        ce += s.ce;
        n += b.targets.len();
    }
    if n == 0 {
        return Err(Error::Config("no sequence has a target token".into()));
    }
    let n = n as f64;
    Ok(KdEval {
        loss: sum / n,
        kl: kl / n,
        ce: ce / n,
    })
}
