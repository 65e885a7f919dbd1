//! hearth-engine (under construction).

pub mod rng;
pub mod sampler;
pub mod stop;

pub use sampler::{logprob_of, top_logprobs, Error, Result, Sampler, SamplingParams};
pub use stop::{StopMatcher, StopOutput};
