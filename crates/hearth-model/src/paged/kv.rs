//! The paged key/value store: fixed pools of fixed-size blocks, per layer.

use half::f16;
use hearth_kernels::KvView;

use crate::{Error, ModelConfig, Result};

/// Keys and values of one layer, `n_blocks * block_size` slots of `kv_dim` each.
#[derive(Debug, Clone)]
pub(crate) struct PagedLayer {
    k: Vec<f16>,
    v: Vec<f16>,
    window: bool,
}

/// Paged key/value storage for every layer of a model, allocated once.
///
/// Global layers share one pool of block ids, windowed layers (when the model has
/// them) another, each with its own block count; a block id names the same block in
/// every layer of its group.
#[derive(Debug, Clone)]
pub struct PagedKv {
    block_size: usize,
    kv_dim: usize,
    n_blocks: usize,
    n_window_blocks: usize,
    layers: Vec<PagedLayer>,
}

impl PagedKv {
    /// Storage for `config` with blocks of `block_size` positions: `n_blocks` for the
    /// global layers and `n_window_blocks` for the sliding-window layers (ignored,
    /// nothing allocated, when the model has none).
    pub fn new(
        config: &ModelConfig,
        block_size: usize,
        n_blocks: usize,
        n_window_blocks: usize,
    ) -> Result<Self> {
        if block_size == 0 {
            return Err(Error::BadKvLayout {
                what: "block size is 0".into(),
            });
        }
        let kv_dim = config.kv_dim();
        let windowed = config.sliding_window().is_some();
        let n_window_blocks = if windowed { n_window_blocks } else { 0 };
        let len = |blocks: usize| {
            blocks
                .checked_mul(block_size)
                .and_then(|n| n.checked_mul(kv_dim))
                .filter(|n| n.checked_mul(2 * 2 * config.n_layers()).is_some())
                .ok_or_else(|| Error::BadKvLayout {
                    what: format!("{blocks} blocks of {block_size} positions overflow"),
                })
        };
        let (global_len, window_len) = (len(n_blocks)?, len(n_window_blocks)?);
        let alloc = |n: usize| -> Result<Vec<f16>> {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| Error::BadKvLayout {
                what: format!("cannot allocate {} bytes", n * 2),
            })?;
            v.resize(n, f16::ZERO);
            Ok(v)
        };
        let layers = config
            .layers
            .iter()
            .map(|spec| {
                let window = spec.window.is_some();
                let n = if window { window_len } else { global_len };
                Ok(PagedLayer {
                    k: alloc(n)?,
                    v: alloc(n)?,
                    window,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            block_size,
            kv_dim,
            n_blocks,
            n_window_blocks,
            layers,
        })
    }

    /// Bytes one block takes over all global layers and over all windowed layers of
    /// `config`: what sizing each pool from a memory budget needs.
    pub fn block_bytes(config: &ModelConfig, block_size: usize) -> (usize, usize) {
        let per_layer = block_size * config.kv_dim() * 2 * 2;
        let windowed = config.layers.iter().filter(|l| l.window.is_some()).count();
        (
            per_layer * (config.n_layers() - windowed),
            per_layer * windowed,
        )
    }

    /// Positions per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the global pool.
    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    /// Blocks in the sliding-window pool (0 when the model has no windowed layers).
    pub fn n_window_blocks(&self) -> usize {
        self.n_window_blocks
    }

    /// Layers stored.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Values per position and layer (keys or values of every KV head).
    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Whether layer `layer` uses the sliding-window pool.
    pub fn is_windowed(&self, layer: usize) -> bool {
        self.layers.get(layer).is_some_and(|l| l.window)
    }

    /// Bytes of key/value storage, all layers.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| (l.k.len() + l.v.len()) * 2)
            .sum()
    }

    fn span(&self, layer: usize, block: u32, offset: usize) -> Option<(&PagedLayer, usize)> {
        let l = self.layers.get(layer)?;
        let pool = if l.window {
            self.n_window_blocks
        } else {
            self.n_blocks
        };
        ((block as usize) < pool && offset < self.block_size)
            .then(|| (l, (block as usize * self.block_size + offset) * self.kv_dim))
    }

    /// Keys of all KV heads stored in `layer`, block `block` (of that layer's pool),
    /// slot `offset`; `None` when any index is out of range.
    pub fn key(&self, layer: usize, block: u32, offset: usize) -> Option<&[f16]> {
        let (l, s) = self.span(layer, block, offset)?;
        l.k.get(s..s + self.kv_dim)
    }

    /// Values, as [`key`](Self::key).
    pub fn value(&self, layer: usize, block: u32, offset: usize) -> Option<&[f16]> {
        let (l, s) = self.span(layer, block, offset)?;
        l.v.get(s..s + self.kv_dim)
    }

    /// Checks that this storage was laid out for `config`.
    pub(crate) fn check_fits(&self, config: &ModelConfig) -> Result<()> {
        let same_layers = self.layers.len() == config.n_layers()
            && self
                .layers
                .iter()
                .zip(&config.layers)
                .all(|(l, s)| l.window == s.window.is_some());
        if self.kv_dim != config.kv_dim() || !same_layers {
            return Err(Error::BadKvLayout {
                what: "the storage was laid out for another model".into(),
            });
        }
        Ok(())
    }

    /// Writes row `i` of `k` and `v` (`kv_dim` each) to flat slot `slots[i]`
    /// (`block * block_size + offset`) of `layer`; the slots were validated.
    pub(crate) fn write(&mut self, layer: usize, slots: &[usize], k: &[f16], v: &[f16]) {
        let d = self.kv_dim;
        let Some(l) = self.layers.get_mut(layer) else {
            return;
        };
        for ((&s, kr), vr) in slots.iter().zip(k.chunks_exact(d)).zip(v.chunks_exact(d)) {
            l.k[s * d..(s + 1) * d].copy_from_slice(kr);
            l.v[s * d..(s + 1) * d].copy_from_slice(vr);
        }
    }

    /// A view of one sequence in `layer` through a table of blocks that starts at
    /// logical block `first_block`.
    pub(crate) fn view<'a>(
        &'a self,
        layer: usize,
        first_block: usize,
        blocks: &'a [u32],
    ) -> Option<TableView<'a>> {
        let l = self.layers.get(layer)?;
        Some(TableView {
            k: &l.k,
            v: &l.v,
            dim: self.kv_dim,
            block_size: self.block_size,
            first_block,
            blocks,
        })
    }
}

/// One sequence's positions in one layer, read through its block table. Positions
/// outside what the table covers are a caller bug that validation rules out.
pub(crate) struct TableView<'a> {
    k: &'a [f16],
    v: &'a [f16],
    dim: usize,
    block_size: usize,
    first_block: usize,
    blocks: &'a [u32],
}

impl TableView<'_> {
    fn start(&self, pos: usize) -> usize {
        let b = self.blocks[pos / self.block_size - self.first_block] as usize;
        (b * self.block_size + pos % self.block_size) * self.dim
    }
}

impl KvView for TableView<'_> {
    fn key(&self, pos: usize) -> &[f16] {
        let s = self.start(pos);
        &self.k[s..s + self.dim]
    }

    fn value(&self, pos: usize) -> &[f16] {
        let s = self.start(pos);
        &self.v[s..s + self.dim]
    }
}
