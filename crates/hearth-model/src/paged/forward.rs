//! [`Transformer::forward_paged`]: one forward step over a ragged batch.

use hearth_kernels as k;
use rayon::prelude::*;

use crate::lora::RowLoras;
use crate::paged::{PagedKv, RaggedBatch};
use crate::transformer::Qkv;
use crate::{Error, Result, Transformer};

impl Transformer {
    /// Runs every sequence of `batch` one step: the new tokens of all sequences go
    /// through each weight matrix together, each token's keys and values are written
    /// to its sequence's blocks in `kv`, and each token attends over its own
    /// sequence's positions up to itself (the last `window` of them on sliding-window
    /// layers). Returns the logits (vocab-sized rows) after the last token of each
    /// sequence with [`logits`](crate::paged::SeqSlice::logits) set, in sequence order.
    ///
    /// Numerically this is [`forward`](Self::forward) for each sequence alone. A batch
    /// that does not fit the model or `kv` is an error and writes nothing.
    pub fn forward_paged(&self, batch: &RaggedBatch, kv: &mut PagedKv) -> Result<Vec<f32>> {
        crate::transformer::in_pool(|| self.forward_paged_here(batch, kv))
    }

    fn forward_paged_here(&self, batch: &RaggedBatch, kv: &mut PagedKv) -> Result<Vec<f32>> {
        let cfg = self.config();
        kv.check_fits(cfg)?;
        self.check_tokens(&batch.tokens)?;
        let lay = batch.layout(cfg, kv)?;
        if batch.tokens.is_empty() {
            return Ok(Vec::new());
        }
        let (n, d, qd) = (batch.tokens.len(), cfg.d_model, cfg.q_dim());
        let shape = self.attn_shape();
        let mut lora = RowLoras::none();
        for s in &batch.seqs {
            lora.push(s.adapter.as_ref(), s.range.clone());
        }
        let mut x = self.embed_rows(&batch.tokens, &lora);
        let mut h = vec![0.0; n * d];
        for l in 0..cfg.n_layers() {
            self.attn_input(l, &x, &mut h);
            let Qkv { q, k: kh, v: vh } = self.project_qkv(l, &h, |i| lay.pos[i], &lora);
            let window = cfg.layers[l].window;
            let slots = match window {
                Some(_) => &lay.window_slots,
                None => &lay.global_slots,
            };
            kv.write(l, slots, &kh, &vh);
            drop((kh, vh));
            let kv = &*kv;
            let views = batch
                .seqs
                .iter()
                .map(|s| {
                    let (first, blocks) = match (window, &s.window_table) {
                        (Some(_), Some(t)) => (t.first_block, &t.blocks[..]),
                        _ => (0, &s.block_table[..]),
                    };
                    kv.view(l, first, blocks)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::BadKvLayout {
                    what: format!("layer {l} is missing"),
                })?;
            let mut attn = vec![0.0; n * qd];
            attn.par_chunks_mut(qd)
                .zip(q.par_chunks(qd))
                .enumerate()
                .for_each_init(Vec::new, |scores, (i, (o, qi))| {
                    let pos = lay.pos[i];
                    let lo = window.map_or(0, |w| (pos + 1).saturating_sub(w));
                    k::attend(qi, &views[lay.seq[i]], lo, pos, &shape, scores, o);
                });
            drop(q);
            self.finish_layer(l, attn, &mut x, &mut h, &lora);
        }
        let wanted: Vec<_> = batch.seqs.iter().filter(|s| s.logits).collect();
        let rows: Vec<usize> = wanted.iter().map(|s| s.range.end - 1).collect();
        let mut head_lora = RowLoras::none();
        for (i, s) in wanted.iter().enumerate() {
            head_lora.push(s.adapter.as_ref(), i..i + 1);
        }
        let mut hidden = vec![0.0; rows.len() * d];
        for (out, &r) in hidden.chunks_exact_mut(d).zip(&rows) {
            self.final_norm(&x[r * d..(r + 1) * d], out);
        }
        Ok(self.logits_with(&hidden, &head_lora))
    }
}
