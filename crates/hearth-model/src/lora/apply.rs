//! Adapters bound to a model, and the low-rank deltas the forward pass adds per row.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use super::{LoraAdapter, LoraTensor, Proj, Target};
use crate::{Result, Transformer};

/// A [`LoraAdapter`] checked against one model and indexed for the forward pass.
/// Two values are equal only when they are the same object: sequences of one batch
/// share an adapter exactly when they hold the same `Arc`.
pub struct ModelLora {
    name: String,
    fingerprint: u64,
    layers: Vec<[Option<LoraTensor>; 7]>,
    embed: Option<LoraTensor>,
    output: Option<LoraTensor>,
}

impl std::fmt::Debug for ModelLora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelLora")
            .field("name", &self.name)
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

impl PartialEq for ModelLora {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ModelLora {}

impl ModelLora {
    /// The name it was bound under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A hash of the adapter's contents (names, shapes, scales and values): equal for
    /// equal adapters, so it can key caches of what the adapter computed.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(crate) fn proj(&self, layer: usize, p: Proj) -> Option<&LoraTensor> {
        self.layers.get(layer)?[p.index()].as_ref()
    }

    pub(crate) fn embed(&self) -> Option<&LoraTensor> {
        self.embed.as_ref()
    }

    pub(crate) fn output(&self) -> Option<&LoraTensor> {
        self.output.as_ref()
    }
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn floats(&mut self, v: &[f32]) {
        for x in v {
            self.bytes(&x.to_bits().to_le_bytes());
        }
    }
}

impl Transformer {
    /// Checks `adapter` against this model (architecture, targets, shapes) and indexes
    /// it for [`forward_with`](Self::forward_with) and
    /// [`forward_paged`](Self::forward_paged) under `name`.
    pub fn bind_lora(&self, name: impl Into<String>, adapter: &LoraAdapter) -> Result<ModelLora> {
        let cfg = self.config();
        adapter.check(cfg)?;
        let mut h = Fnv(0xCBF2_9CE4_8422_2325);
        h.bytes(adapter.architecture.as_bytes());
        let mut out = ModelLora {
            name: name.into(),
            fingerprint: 0,
            layers: vec![Default::default(); cfg.n_layers()],
            embed: None,
            output: None,
        };
        for (tname, t) in &adapter.tensors {
            h.bytes(tname.as_bytes());
            h.bytes(&[0]);
            for n in [t.rows, t.cols, t.rank] {
                h.bytes(&(n as u64).to_le_bytes());
            }
            h.floats(&[t.scale]);
            h.floats(&t.a);
            h.floats(&t.b);
            // `check` accepted only known targets.
            match Target::parse(tname) {
                Some(Target::Block { layer, proj }) => {
                    out.layers[layer][proj.index()] = Some(t.clone())
                }
                Some(Target::Embedding) => out.embed = Some(t.clone()),
                Some(Target::Output) => out.output = Some(t.clone()),
                None => {}
            }
        }
        out.fingerprint = h.0;
        Ok(out)
    }
}

/// Which rows of a step's activations use which adapter: runs of rows, each with
/// its adapter (rows in no run use none).
#[derive(Default)]
pub(crate) struct RowLoras<'a> {
    runs: Vec<(&'a ModelLora, Range<usize>)>,
}

impl<'a> RowLoras<'a> {
    /// No adapter on any row.
    pub fn none() -> Self {
        Self::default()
    }

    /// `lora` on rows `rows`, if any.
    pub fn single(lora: Option<&'a ModelLora>, rows: Range<usize>) -> Self {
        Self {
            runs: lora.map(|l| (l, rows)).into_iter().collect(),
        }
    }

    /// Adds a run.
    pub fn push(&mut self, lora: Option<&'a Arc<ModelLora>>, rows: Range<usize>) {
        if let Some(l) = lora {
            self.runs.push((l, rows));
        }
    }

    /// Adds `scale · B (A x)` of the pair `pick` chooses to each row of `out` (rows
    /// of `B`'s height) whose adapter has one; `x` holds the rows' inputs.
    pub fn add(
        &self,
        pick: impl Fn(&ModelLora) -> Option<&LoraTensor>,
        x: &[f32],
        out: &mut [f32],
    ) {
        for (lora, rows) in &self.runs {
            let Some(t) = pick(lora) else { continue };
            let (ic, oc) = (t.cols, t.rows);
            let xs = &x[rows.start * ic..rows.end * ic];
            let os = &mut out[rows.start * oc..rows.end * oc];
            os.par_chunks_mut(oc).zip(xs.par_chunks(ic)).for_each_init(
                || vec![0.0f32; t.rank],
                |tmp, (o, xi)| low_rank(t, xi, tmp, o),
            );
        }
    }

    /// Adds the embedding delta of each row's adapter: row `i` (token `tokens[i]`)
    /// gains `scale · B[token] · A`.
    pub fn add_embedding(&self, tokens: &[u32], out: &mut [f32]) {
        for (lora, rows) in &self.runs {
            let Some(t) = lora.embed() else { continue };
            for i in rows.clone() {
                let tok = tokens[i] as usize;
                let brow = &t.b[tok * t.rank..(tok + 1) * t.rank];
                let o = &mut out[i * t.cols..(i + 1) * t.cols];
                for (k, &bk) in brow.iter().enumerate() {
                    let w = t.scale * bk;
                    let a = &t.a[k * t.cols..(k + 1) * t.cols];
                    o.iter_mut().zip(a).for_each(|(y, &v)| *y += w * v);
                }
            }
        }
    }
}

/// `out += scale · B (A x)` for one row; `tmp` holds `rank` values.
fn low_rank(t: &LoraTensor, x: &[f32], tmp: &mut [f32], out: &mut [f32]) {
    for (k, v) in tmp.iter_mut().enumerate() {
        let a = &t.a[k * t.cols..(k + 1) * t.cols];
        *v = t.scale * a.iter().zip(x).map(|(p, q)| p * q).sum::<f32>();
    }
    for (o, b) in out.iter_mut().zip(t.b.chunks_exact(t.rank)) {
        *o += b.iter().zip(tmp.iter()).map(|(p, q)| p * q).sum::<f32>();
    }
}
