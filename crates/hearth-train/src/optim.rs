//! AdamW (decoupled weight decay, PyTorch's defaults) with global gradient-norm
//! clipping, and the learning-rate schedule of Hugging Face's
//! `get_cosine_schedule_with_warmup`.

use std::f64::consts::PI;

/// Optimizer settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay (TRL's default: 0).
    pub weight_decay: f64,
    /// Gradients are scaled down to this global L2 norm (Transformers' default: 1);
    /// 0 disables clipping.
    pub max_grad_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 2e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        }
    }
}

/// Learning-rate multiplier at optimizer step `step` (0-based) of `total`: linear
/// warm-up over `warmup` steps, then cosine decay to zero.
pub fn lr_factor(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    (0.5 * (1.0 + (PI * progress).cos())).max(0.0)
}

/// AdamW state over a list of flat parameter buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    /// Settings.
    pub config: AdamWConfig,
    /// First moments, one buffer per parameter.
    pub m: Vec<Vec<f32>>,
    /// Second moments.
    pub v: Vec<Vec<f32>>,
    /// Updates taken so far.
    pub t: u64,
}

impl AdamW {
    /// Fresh state for parameters of the given sizes.
    pub fn new(config: AdamWConfig, sizes: &[usize]) -> Self {
        Self {
            config,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            t: 0,
        }
    }

    /// One update at learning rate `lr`; clips `grads` in place first. Returns the
    /// gradient norm before clipping.
    pub fn step(&mut self, params: &mut [Vec<f32>], grads: &mut [Vec<f32>], lr: f64) -> f64 {
        let c = &self.config;
        let norm = grads
            .iter()
            .flatten()
            .map(|&g| (g as f64) * (g as f64))
            .sum::<f64>()
            .sqrt();
        if c.max_grad_norm > 0.0 && norm > c.max_grad_norm {
            let s = (c.max_grad_norm / (norm + 1e-6)) as f32;
            grads.iter_mut().flatten().for_each(|g| *g *= s);
        }
        self.t += 1;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        let step_size = lr / bc1;
        for (i, (p, g)) in params.iter_mut().zip(grads.iter()).enumerate() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for j in 0..p.len() {
                let gj = g[j] as f64;
                let mj = c.beta1 * m[j] as f64 + (1.0 - c.beta1) * gj;
                let vj = c.beta2 * v[j] as f64 + (1.0 - c.beta2) * gj * gj;
                m[j] = mj as f32;
                v[j] = vj as f32;
                let mut pj = p[j] as f64 * (1.0 - lr * c.weight_decay);
                pj -= step_size * mj / ((vj / bc2).sqrt() + c.eps);
                p[j] = pj as f32;
            }
        }
        norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert_eq!(lr_factor(0, 10, 100), 0.0);
        assert!((lr_factor(5, 10, 100) - 0.5).abs() < 1e-12);
        assert!((lr_factor(10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((lr_factor(55, 10, 100) - 0.5).abs() < 1e-12);
        assert!(lr_factor(100, 10, 100).abs() < 1e-12);
        assert!((lr_factor(0, 0, 10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn first_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        let mut opt = AdamW::new(AdamWConfig::default(), &[3]);
        let mut p = vec![vec![1.0f32, 1.0, 1.0]];
        let mut g = vec![vec![0.1f32, -0.2, 0.0]];
        opt.step(&mut p, &mut g, 0.01);
        assert!((p[0][0] - 0.99).abs() < 1e-6);
        assert!((p[0][1] - 1.01).abs() < 1e-6);
        assert_eq!(p[0][2], 1.0);
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let mut opt = AdamW::new(AdamWConfig::default(), &[2]);
        let mut p = vec![vec![0.0f32; 2]];
        let mut g = vec![vec![3.0f32, 4.0]];
        let norm = opt.step(&mut p, &mut g, 0.0);
        assert!((norm - 5.0).abs() < 1e-9);
        let clipped = (g[0][0].powi(2) + g[0][1].powi(2)).sqrt();
        assert!((clipped - 1.0).abs() < 1e-5);
    }
}
