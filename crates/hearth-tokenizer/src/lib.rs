//! Text to token ids and back, built from a GGUF file's vocabulary metadata, and chat
//! templates.
//!
//! Depends only on `hearth-gguf` (to read vocabulary metadata); knows nothing of models.
//! Key design choice: one `Tokenizer` type over two algorithms (SentencePiece-style
//! score merges and byte-level BPE rank merges) that reproduce llama.cpp's
//! tokenization exactly, special tokens included.

pub mod chat;

pub use chat::{ChatError, ChatMessage, ChatTemplate};
