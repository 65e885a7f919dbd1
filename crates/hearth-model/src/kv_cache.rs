//! Per-sequence key/value cache, at half precision like llama.cpp's default. Global
//! layers keep every position; sliding-window layers keep a ring of exactly `window`
//! positions, so their memory is bounded by the window however long the sequence grows.
//! A forward step attends over the cache plus its own fresh keys ([`StepKv`]) and only
//! then stores them, so a chunk longer than the window never overwrites what it needs.

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

    /// Stores `n` consecutive positions starting at `start` (only the last `window`
    /// of them on a ring).
    pub(crate) fn store(&mut self, start: usize, k: &[f16], v: &[f16]) {
        let n = k.len() / self.dim;
        let skip = self.ring.map_or(0, |c| n.saturating_sub(c));
        for i in skip..n {
            let s = self.slot(start + i);
            let need = (s + 1) * self.dim;
            if self.k.len() < need {
                self.k.resize(need, f16::ZERO);
                self.v.resize(need, f16::ZERO);
            }
            let src = i * self.dim..(i + 1) * self.dim;
            self.k[s * self.dim..need].copy_from_slice(&k[src.clone()]);
            self.v[s * self.dim..need].copy_from_slice(&v[src]);
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

/// What one forward step attends over: the layer's cache for positions before
/// `start`, the step's own keys and values from `start` on.
pub(crate) struct StepKv<'a> {
    pub cached: &'a LayerKv,
    pub start: usize,
    pub k: &'a [f16],
    pub v: &'a [f16],
}

impl KvView for StepKv<'_> {
    fn key(&self, pos: usize) -> &[f16] {
        if pos >= self.start {
            let d = self.cached.dim;
            &self.k[(pos - self.start) * d..(pos - self.start + 1) * d]
        } else {
            self.cached.key(pos)
        }
    }

    fn value(&self, pos: usize) -> &[f16] {
        if pos >= self.start {
            let d = self.cached.dim;
            &self.v[(pos - self.start) * d..(pos - self.start + 1) * d]
        } else {
            self.cached.value(pos)
        }
    }
}

/// The KV cache of one sequence: what the model has seen so far.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) layers: Vec<LayerKv>,
    len: usize,
}

impl KvCache {
    /// An empty cache for `config`.
    pub(crate) fn new(config: &ModelConfig) -> Self {
        let dim = config.kv_dim();
        let layers = config
            .layers
            .iter()
            .map(|l| LayerKv {
                k: Vec::new(),
                v: Vec::new(),
                dim,
                ring: l.window,
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
        self.layers
            .iter()
            .map(|l| l.capacity_positions() * l.dim * 2 * 2)
            .collect()
    }

    /// Positions of storage allocated per layer.
    pub fn positions_per_layer(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.capacity_positions()).collect()
    }

    /// Bytes of key/value storage allocated in all layers.
    pub fn bytes(&self) -> usize {
        self.bytes_per_layer().iter().sum()
    }
}
