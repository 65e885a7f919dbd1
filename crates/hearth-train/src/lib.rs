//! LoRA supervised fine-tuning and knowledge distillation on CPU: the logic behind
//! `hearth finetune` and `hearth distill`.
//!
//! Records in the common SFT layouts ([`data`]) are rendered with the model's chat
//! template and tokenized with loss on assistant tokens only ([`encode`]); a frozen
//! base model, dequantized from its GGUF file, runs a differentiable forward pass
//! ([`model`]) that matches hearth-model's inference; LoRA pairs ([`lora`]) train
//! with AdamW under warm-up and cosine decay ([`optim`]), with gradient accumulation,
//! validation, checkpoints and resume ([`trainer`]), and are written as PEFT and GGUF
//! LoRA adapters carrying a provenance record ([`export`]). Knowledge distillation
//! trains a smaller student's own weights against a teacher's cached top-k
//! distributions ([`distill`]).
//!
//! This crate knows nothing of the terminal or HTTP (progress goes through a
//! callback). Key design choice: the frozen linear layers are a custom autograd op
//! over dense f32 weights that passes gradients to its input only, never through
//! candle's quantized matmul, whose output silently leaves the gradient graph.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod data;
pub mod distill;
pub mod encode;
mod error;
pub mod eval;
pub mod export;
pub mod lora;
pub mod model;
pub mod optim;
pub mod rng;
pub mod st;
pub mod trainer;
mod weights;

pub use error::{Error, Result};
pub use lora::{LoraConfig, LoraParams, Target};
pub use model::{Packed, TrainModel};
pub use trainer::{eval_loss, StepReport, TrainConfig, Trainer};
