//! Knowledge distillation: a student with the teacher's tokenizer learns the teacher's
//! next-token distributions (logit distillation: KL at a temperature, mixed with
//! hard-label cross-entropy), the logic behind `hearth distill`.
//!
//! The teacher runs once, through hearth-model's quantized inference path, and its
//! top-k next tokens at every target position are cached on disk ([`cache`]); training
//! then only runs the student ([`train`]), whose weights are trainable variables in
//! the same differentiable forward pass LoRA fine-tuning uses ([`student`]). The loss
//! and its conventions are in [`loss`]; the result is a GGUF model ([`export`]).

pub mod cache;
pub mod export;
pub mod loss;
pub mod student;
pub mod train;

pub use cache::{load_or_build, CacheHeader, CacheOrigin, TopKCache};
pub use export::{write_student, StudentFile};
pub use loss::{loss_sums, KdLoss, TeacherRows};
pub use student::{check_vocab, parse_layers, Student, StudentShape};
pub use train::{evaluate, Distiller, KdEval, KdStep};
