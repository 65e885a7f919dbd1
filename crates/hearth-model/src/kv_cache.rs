//! Per-sequence key/value cache. Global layers keep every position; sliding-window
//! layers keep a ring of `window + chunk` positions, so their memory is bounded by the
//! window however long the sequence grows.

use half::f16;
use hearth_kernels::KvView;

use crate::ModelConfig;

/// Cached keys and values of one layer.
#[derive(Debug, Clone)]
pub(crate) struct LayerKv {
    k: Vec<f16>,
    v: Vec<f16>,
    dim: usize,
    /// Ring capacity in positions; `None` grows without bound.
    ring: Option<usize>,
}

impl LayerKv {
    fn slot(&self, pos: usize) -> usize {
        self.ring.map_or(pos, |c| pos % c)
    }

    /// Stores `n` consecutive positions starting at `start`.
    pub(crate) fn store(&mut self, start: usize, k: &[f32], v: &[f32]) {
        let n = k.len() / self.dim;
        for i in 0..n {
            let s = self.slot(start + i);
            let need = (s + 1) * self.dim;
            if self.k.len() < need {
                self.k.resize(need, f16::ZERO);
                self.v.resize(need, f16::ZERO);
            }
            let src = i * self.dim..(i + 1) * self.dim;
            for (d, &x) in self.k[s * self.dim..need].iter_mut().zip(&k[src.clone()]) {
                *d = f16::from_f32(x);
            }
            for (d, &x) in self.v[s * self.dim..need].iter_mut().zip(&v[src]) {
                *d = f16::from_f32(x);
            }
        }
    }

    /// Positions of storage currently allocated.
    pub(crate) fn capacity_positions(&self) -> usize {
        self.k.len() / self.dim
    }
}

impl KvView for LayerKv {
    fn key(&self, pos: usize) -> &[f16] {
        let s = self.slot(pos);
        &self.k[s * self.dim..(s + 1) * self.dim]
    }

    fn value(&self, pos: usize) -> &[f16] {
        let s = self.slot(pos);
        &self.v[s * self.dim..(s + 1) * self.dim]
    }
}

/// The KV cache of one sequence: what the model has seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) layers: Vec<LayerKv>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `config`; `max_chunk` is the most positions one forward call
    /// adds (ring buffers must hold the window plus one chunk).
    pub(crate) fn new(config: &ModelConfig, max_chunk: usize) -> Self {
        let dim = config.kv_dim();
        let layers = config
            .layers
            .iter()
            .map(|l| LayerKv {
                k: Vec::new(),
                v: Vec::new(),
                dim,
                ring: l.window.map(|w| w + max_chunk),
            })
            .collect();
        Self { layers, len: 0 }
    }

    /// Positions seen so far (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Forgets everything, keeping the allocations.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes of key/value storage allocated, per layer.
    pub fn bytes_per_layer(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.capacity_positions() * l.dim * 2 * 2).collect()
    }

    /// Bytes of key/value storage allocated in all layers.
    pub fn bytes(&self) -> usize {
        self.bytes_per_layer().iter().sum()
    }
}
