//! Paged KV storage and the ragged-batch forward pass the engine drives.
//!
//! One engine step runs the new tokens of every running sequence together
//! ([`RaggedBatch`]): prefill chunks and single decode tokens side by side, each
//! sequence with its first position and its block tables into a [`PagedKv`] allocated
//! once at start. [`Transformer::forward_paged`](crate::Transformer::forward_paged)
//! reads every weight once for the whole batch, writes each token's keys and values
//! into its sequence's blocks, attends over each sequence's own positions through its
//! table, and returns logits only for the sequences that ask for them.
//!
//! Global layers keep every position in a pool of `n_blocks` blocks; position `p` of a
//! sequence lives in `block_table[p / block_size]` at offset `p % block_size`.
//! Sliding-window layers use a second pool whose tables start at logical block
//! `first_block` (older blocks freed once no query can see them): position `p` lives in
//! `blocks[p / block_size - first_block]`. Block ids are plain `u32` indices into their
//! pool; who owns which block is the engine's business, not the model's.

mod batch;
mod forward;
mod kv;

pub use batch::{RaggedBatch, SeqSlice, WindowTable};
pub use kv::PagedKv;
