//! Text to token ids and back, built from a GGUF file's vocabulary metadata, and chat
//! templates.
//!
//! Depends only on `hearth-gguf` (to read vocabulary metadata); knows nothing of models.
//! Key design choice: one `Tokenizer` type over two algorithms (SentencePiece-style
//! score merges and byte-level BPE rank merges) that reproduce llama.cpp's
//! tokenization exactly, special tokens included.
//!
//! Layout: `vocab` reads the metadata (token tables, special tokens, llama.cpp's defaults
//! and fix-ups), `special` splits text on special-token texts, `spm` and `bpe` tokenize the
//! text in between (`pretype` maps `tokenizer.ggml.pre` to llama.cpp's expressions,
//! `pretokenize` runs them, `unicode` holds llama.cpp's code point tables), `decode` and
//! `stream` turn ids back into text.
//!
//! Checked against llama.cpp on the golden outputs of the real models and on llama.cpp's
//! own vocabulary conformance files (see `tests/llama_vocab.rs` for the list we claim).
//! Not implemented: WordPiece (`bert`), Unigram (`t5`), RWKV, PLaMo-2 vocabularies, and the
//! pre-tokenizers that need llama.cpp's bespoke splitters (e.g. `kimi-k2`, `afmoe`,
//! `tekken`, `gpt-4o`, `tiny_aya`, `superbpe`, `jais-2`); those fail at load with a
//! message naming them.

mod bpe;
pub mod chat;
mod decode;
mod error;
mod pretokenize;
mod pretype;
mod special;
mod spm;
mod stream;
mod unicode;
mod unicode_data;
mod vocab;

pub use chat::{ChatError, ChatMessage, ChatTemplate};
pub use error::{Error, Result};
pub use stream::StreamDecoder;

use hearth_gguf::GgufFile;
use pretokenize::PreTokenizer;
use special::{Fragment, SpecialFinder};
use vocab::Vocab;

/// The tokenization algorithm of a vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// SentencePiece-style score merges with byte fallback (`tokenizer.ggml.model` = `llama`).
    Spm,
    /// Byte-level BPE with ranked merges (`tokenizer.ggml.model` = `gpt2`).
    Bpe,
}

/// A tokenizer built from GGUF vocabulary metadata; tokenizes exactly as llama.cpp does.
///
/// Immutable after construction, so `Send + Sync` and cheap to share behind an `Arc`.
pub struct Tokenizer {
    vocab: Vocab,
    pre: Option<PreTokenizer>,
    finder: SpecialFinder,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("vocab_size", &self.vocab.texts.len())
            .field("bos", &self.vocab.bos)
            .field("eos", &self.vocab.eos)
            .finish()
    }
}

impl Tokenizer {
    /// Builds the tokenizer from the `tokenizer.*` metadata of `f`.
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let vocab = Vocab::load(f)?;
        let pre = vocab.pre.as_ref().map(PreTokenizer::new).transpose()?;
        let finder = SpecialFinder::new(&vocab);
        Ok(Self { vocab, pre, finder })
    }

    /// Tokenizes a conversation rendered by a chat template: texts of special tokens
    /// become those tokens, and BOS is added only when the model wants it and the
    /// template did not already write it.
    pub fn encode_chat(&self, rendered: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(rendered, false, true)?;
        if let Some(bos) = self.bos().filter(|_| self.add_bos()) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Tokenizes `text`. With `add_special`, BOS/EOS are added as the metadata says
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`, else llama.cpp's defaults for the
    /// model type). With `parse_special`, texts of control tokens in `text` become those
    /// tokens (user-defined tokens always do).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let v = &self.vocab;
        let frags = special::partition(v, &self.finder, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && v.add_bos {
            out.push(v.bos.ok_or(Error::MissingSpecialToken("BOS"))?);
        }
        match v.kind {
            TokenizerKind::Spm => {
                let mut prev_special = true;
                for frag in frags {
                    match frag {
                        Fragment::Text(s, e) => {
                            let mut t = String::with_capacity(e - s + 3);
                            if v.add_space_prefix && prev_special {
                                t.push(' ');
                            }
                            t.push_str(&text[s..e]);
                            let t = t.replace(' ', "\u{2581}");
                            spm::tokenize(v, &t, &mut out)?;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            TokenizerKind::Bpe => {
                let Some(pre) = &self.pre else { return Ok(out) };
                for frag in frags {
                    match frag {
                        Fragment::Text(s, e) if v.escape_whitespaces => {
                            bpe::tokenize(v, pre, &text[s..e].replace(' ', "\u{2581}"), &mut out)?
                        }
                        Fragment::Text(s, e) => bpe::tokenize(v, pre, &text[s..e], &mut out)?,
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if add_special && v.add_eos {
            out.push(v.eos.ok_or(Error::MissingSpecialToken("EOS"))?);
        }
        Ok(out)
    }

    /// The text of `ids` (as llama.cpp's `detokenize` with `remove_special = false`):
    /// control tokens rendered as their text only if `special`; the leading space a
    /// SentencePiece vocabulary adds is dropped from the first token; invalid UTF-8 is
    /// replaced lossily.
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        String::from_utf8_lossy(&decode::detokenize(&self.vocab, ids, special)).into_owned()
    }

    /// The raw bytes token `id` contributes to the output text: SentencePiece's U+2581
    /// becomes a space, `<0xNN>` byte tokens that byte, byte-level BPE's unicode mapping is
    /// undone. Control tokens are empty unless `special`; unknown ids are empty.
    pub fn token_bytes(&self, id: u32, special: bool) -> Vec<u8> {
        decode::piece(&self.vocab, id, special)
    }

    /// The vocabulary string of `id`, as stored.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.texts.get(id as usize).map(String::as_str)
    }

    /// The id whose vocabulary string is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.texts.len()
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// End-of-generation tokens, ascending, as llama.cpp determines them (EOS, EOT, EOM,
    /// FIM pad/repo/separator and tokens such as `<end_of_turn>`, `<|im_end|>`, `<|eot_id|>`,
    /// `<|endoftext|>`).
    pub fn eog_ids(&self) -> &[u32] {
        &self.vocab.eog
    }

    /// Whether generating `id` ends generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.binary_search(&id).is_ok()
    }

    /// The chat template (`tokenizer.chat_template`), if the file has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.vocab.chat_template.as_deref()
    }

    /// The tokenization algorithm.
    pub fn model_kind(&self) -> TokenizerKind {
        self.vocab.kind
    }
}

#[cfg(test)]
mod tests;
