//! The training loop: micro-batches packed from shuffled examples, loss normalised by
//! the assistant tokens of the whole optimizer step (so gradient accumulation equals
//! one large batch), AdamW under warm-up and cosine decay, validation loss.
//!
//! The order of examples is a pure function of the seed and how many were consumed,
//! so a resumed run sees exactly the batches an uninterrupted one would.

use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};

use crate::encode::Encoded;
use crate::lora::{LoraConfig, LoraParams};
use crate::model::{Dropout, Packed, TrainModel};
use crate::optim::{lr_factor, AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::{Error, Result};

/// Settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Sequences per micro-batch (one packed forward pass).
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// AdamW settings (peak learning rate included).
    pub optim: AdamWConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 4,
            grad_accum: 1,
            warmup: 0,
            seed: 42,
            optim: AdamWConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Fails on zero steps or batch sizes.
    pub fn check(&self) -> Result<()> {
        if self.steps == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return Err(Error::Config(
                "steps, batch size and gradient accumulation must be at least 1".into(),
            ));
        }
        if self.optim.lr.is_nan() || self.optim.lr <= 0.0 {
            return Err(Error::Config(format!(
                "learning rate {} must be positive",
                self.optim.lr
            )));
        }
        Ok(())
    }
}

/// Where a run stands; with the parameters and optimizer moments, all a checkpoint
/// needs to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Optimizer steps taken.
    pub step: usize,
    /// Training examples consumed (over all epochs).
    pub consumed: u64,
    /// State of the dropout generator.
    pub dropout_rng: u64,
}

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Steps taken, this one included.
    pub step: usize,
    /// Mean cross-entropy per assistant token of the step's batch.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens run through the model (prompts included).
    pub tokens: usize,
    /// Seconds the step took.
    pub seconds: f64,
}

/// A LoRA training run over a frozen model.
#[derive(Debug)]
pub struct Trainer<'m> {
    pub(crate) model: &'m TrainModel,
    pub(crate) lora: LoraParams,
    pub(crate) opt: AdamW,
    pub(crate) cfg: TrainConfig,
    pub(crate) data: Vec<Encoded>,
    pub(crate) progress: Progress,
    order: Order,
}

impl<'m> Trainer<'m> {
    /// A fresh run on `data` (examples with no assistant token are left out).
    pub fn new(
        model: &'m TrainModel,
        lora: LoraConfig,
        cfg: TrainConfig,
        data: Vec<Encoded>,
    ) -> Result<Self> {
        cfg.check()?;
        let lora = LoraParams::new(lora, model.config(), cfg.seed, model.dtype())?;
        Self::from_parts(model, lora, cfg, data, None)
    }

    /// A run from given parameters, optimizer state and progress.
    pub(crate) fn from_parts(
        model: &'m TrainModel,
        lora: LoraParams,
        cfg: TrainConfig,
        data: Vec<Encoded>,
        state: Option<(AdamW, Progress)>,
    ) -> Result<Self> {
        let data: Vec<Encoded> = data.into_iter().filter(|e| e.n_targets() > 0).collect();
        if data.is_empty() {
            return Err(Error::Config(
                "no training example has an assistant token to learn".into(),
            ));
        }
        let (cfg_seed, n) = (cfg.seed, data.len());
        let (opt, progress) = match state {
            Some(s) => s,
            None => {
                let sizes: Vec<usize> = lora
                    .named_vars()
                    .iter()
                    .map(|(_, v)| v.elem_count())
                    .collect();
                let progress = Progress {
                    step: 0,
                    consumed: 0,
                    dropout_rng: Rng::new(cfg.seed, 0xD0).0,
                };
                (AdamW::new(cfg.optim.clone(), &sizes), progress)
            }
        };
        Ok(Self {
            model,
            lora,
            opt,
            cfg,
            data,
            progress,
            order: Order::new(cfg_seed, n),
        })
    }

    /// The adapters as trained so far.
    pub fn lora(&self) -> &LoraParams {
        &self.lora
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Where the run stands.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Whether every step has been taken.
    pub fn done(&self) -> bool {
        self.progress.step >= self.cfg.steps
    }

    /// One optimizer step: `grad_accum` micro-batches of `batch_size` examples.
    pub fn step(&mut self) -> Result<StepReport> {
        let t0 = Instant::now();
        let mut micro = Vec::with_capacity(self.cfg.grad_accum);
        for _ in 0..self.cfg.grad_accum {
            let mut b = Packed::default();
            for _ in 0..self.cfg.batch_size {
                let i = self.order.at(self.progress.consumed);
                self.progress.consumed += 1;
                let e = &self.data[i];
                b.push(&e.tokens, &e.mask);
            }
            micro.push(b);
        }
        let n_targets: usize = micro.iter().map(|b| b.targets.len()).sum();
        let vars: Vec<&Var> = self.lora.named_vars().into_iter().map(|(_, v)| v).collect();
        let mut grads = zero_grads(&vars);
        let mut loss_sum = 0f64;
        let mut rng = Rng(self.progress.dropout_rng);
        let p = self.lora.config().dropout;
        for b in &micro {
            let dropout = Dropout { p, rng: &mut rng };
            let loss = self.model.loss_sum(b, Some(&self.lora), Some(dropout))?;
            loss_sum += loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            let scaled = loss.affine(1.0 / n_targets.max(1) as f64, 0.0)?;
            accumulate(&scaled.backward()?, &vars, &mut grads)?;
        }
        self.progress.dropout_rng = rng.0;
        let lr = self.cfg.optim.lr * lr_factor(self.progress.step, self.cfg.warmup, self.cfg.steps);
        let grad_norm = update(&mut self.opt, &vars, &mut grads, lr)?;
        self.progress.step += 1;
        Ok(StepReport {
            step: self.progress.step,
            loss: (loss_sum / n_targets.max(1) as f64) as f32,
            lr,
            grad_norm,
            tokens: micro.iter().map(|b| b.tokens.len()).sum(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Mean cross-entropy per assistant token of `data` with the current adapters.
    pub fn eval_loss(&self, data: &[Encoded]) -> Result<f32> {
        eval_loss(self.model, Some(&self.lora), data, self.cfg.batch_size)
    }
}

/// The order examples are read in: epoch `k / n` of the `k`-th example consumed
/// visits a fresh shuffle, a pure function of the seed.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    seed: u64,
    n: usize,
    /// The shuffled order of the epoch being read: `(epoch, indices)`.
    epoch: Option<(u64, Vec<usize>)>,
}

impl Order {
    /// The order of `n` examples under `seed`.
    pub fn new(seed: u64, n: usize) -> Self {
        Self {
            seed,
            n,
            epoch: None,
        }
    }

    /// Index of the `k`-th example consumed.
    pub fn at(&mut self, k: u64) -> usize {
        let n = self.n.max(1) as u64;
        let epoch = k / n;
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<usize> = (0..self.n).collect();
            Rng::new(self.seed, 0x5EED_0000 + epoch).shuffle(&mut order);
            self.epoch = Some((epoch, order));
        }
        self.epoch.as_ref().map_or(0, |(_, o)| o[(k % n) as usize])
    }
}

/// A zero gradient buffer per variable.
pub(crate) fn zero_grads(vars: &[&Var]) -> Vec<Vec<f32>> {
    vars.iter().map(|v| vec![0.0; v.elem_count()]).collect()
}

/// Adds the gradients of `vars` in `g` to `acc` (one buffer per variable).
pub(crate) fn accumulate(g: &GradStore, vars: &[&Var], acc: &mut [Vec<f32>]) -> Result<()> {
    for (v, acc) in vars.iter().zip(acc.iter_mut()) {
        if let Some(gv) = g.get(v) {
            let gv = gv
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            acc.iter_mut().zip(gv).for_each(|(a, b)| *a += b);
        }
    }
    Ok(())
}

/// One AdamW update of `vars` with `grads` (clipped in place) at learning rate `lr`;
/// returns the gradient norm before clipping.
pub(crate) fn update(
    opt: &mut AdamW,
    vars: &[&Var],
    grads: &mut [Vec<f32>],
    lr: f64,
) -> Result<f64> {
    let mut params = vars
        .iter()
        .map(|v| {
            Ok(v.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        })
        .collect::<Result<Vec<_>>>()?;
    let norm = opt.step(&mut params, grads, lr);
    for (v, p) in vars.iter().zip(params) {
        let t = Tensor::from_vec(p, v.shape(), &Device::Cpu)?.to_dtype(v.dtype())?;
        v.set(&t)?;
    }
    Ok(norm)
}

/// Mean cross-entropy per assistant token of `data` under `lora` (none: the base
/// model), `batch_size` sequences per forward pass.
pub fn eval_loss(
    model: &TrainModel,
    lora: Option<&LoraParams>,
    data: &[Encoded],
    batch_size: usize,
) -> Result<f32> {
    let mut sum = 0f64;
    let mut n = 0usize;
    for chunk in data.chunks(batch_size.max(1)) {
        let mut b = Packed::default();
        for e in chunk {
            b.push(&e.tokens, &e.mask);
        }
        if b.targets.is_empty() {
            continue;
        }
        n += b.targets.len();
        let l = model.loss_sum(&b, lora, None)?;
        sum += l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    }
    if n == 0 {
        return Err(Error::Config(
            "no validation example has an assistant token".into(),
        ));
    }
    Ok((sum / n as f64) as f32)
}
