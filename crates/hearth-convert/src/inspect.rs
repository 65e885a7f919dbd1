//! `inspect`: what a model is, what running it takes, what this machine has, and the
//! seed's selection checklist as a verdict table.

use std::path::Path;

use hearth_lineage::Provenance;
use serde::Serialize;

use crate::facts::{ModelFacts, SourceFormat, TypeStats};
use crate::license::{classify, LicenseVerdict};
use crate::machine::Machine;
use crate::memory::{estimate, MemoryEstimate};
use crate::Result;

/// Parameters the seed's guide asks for.
pub const MIN_PARAMETERS: u64 = 7_000_000_000;
/// Context window the seed's guide asks for.
pub const MIN_CONTEXT: usize = 2048;
/// Quantized size the seed's guide allows.
pub const MAX_QUANTIZED_BYTES: u64 = 10_000_000_000;
/// Bits per weight of a Q4_K_M file (4.5 for Q4_K plus the Q6_K tensors), for the
/// quantized-size estimate.
const Q4_K_M_BITS: f64 = 4.85;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Meets the criterion.
    Pass,
    /// Usable, with a caveat.
    Warn,
    /// Does not meet it.
    Fail,
}

impl Status {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One row of the verdict table.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    /// What is checked.
    pub criterion: String,
    /// The model's value.
    pub value: String,
    /// The outcome.
    pub status: Status,
    /// Why.
    pub why: String,
}

/// Everything `hearth inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The file or directory inspected.
    pub path: String,
    /// `gguf` or `safetensors-dir`.
    pub format: SourceFormat,
    /// The model's name, if recorded.
    pub name: Option<String>,
    /// Architecture (`llama`, `gemma3`).
    pub architecture: String,
    /// Exact parameter count (elements of all tensors).
    pub parameters: u64,
    /// Blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Residual width.
    pub d_model: usize,
    /// Feed-forward width.
    pub ffn_dim: usize,
    /// Context length the model was trained for.
    pub context_length: usize,
    /// Sliding window of local layers, if any.
    pub sliding_window: Option<usize>,
    /// Layers that use the sliding window.
    pub sliding_layers: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Licence identifier from the metadata.
    pub license: Option<String>,
    /// The licence judged.
    pub license_verdict: LicenseVerdict,
    /// Why.
    pub license_reason: String,
    /// Tensors by type.
    pub tensor_types: Vec<TypeStats>,
    /// Bytes of tensor data.
    pub weight_bytes: u64,
    /// Bytes on disk.
    pub file_bytes: u64,
    /// Memory to run at `--ctx` and `--batch`.
    pub memory: MemoryEstimate,
    /// `memory.total_bytes`.
    pub memory_bytes: u64,
    /// This machine.
    pub machine: Machine,
    /// The seed's checklist.
    pub verdicts: Vec<Criterion>,
    /// How the file was made, when hearth made it.
    pub provenance: Option<Provenance>,
}

/// Inspects a GGUF file or a Hugging Face style directory.
pub fn inspect(path: &Path, ctx: Option<usize>, batch: usize) -> Result<InspectReport> {
    let facts = ModelFacts::open(path)?;
    Ok(report(path, &facts, ctx, batch, Machine::detect()))
}

/// Builds the report from facts already read (`ctx` defaults to the model's context).
pub fn report(
    path: &Path,
    f: &ModelFacts,
    ctx: Option<usize>,
    batch: usize,
    machine: Machine,
) -> InspectReport {
    let ctx = ctx.unwrap_or(f.context_length).max(1);
    let memory = estimate(f, ctx, batch.max(1));
    let (license_verdict, license_reason) = classify(f.license.as_deref());
    let verdicts = verdicts(f, &memory, &machine, license_verdict, &license_reason);
    InspectReport {
        path: path.display().to_string(),
        format: f.format,
        name: f.name.clone(),
        architecture: f.architecture.clone(),
        parameters: f.parameters,
        layers: f.layers,
        heads: f.heads,
        kv_heads: f.kv_heads,
        head_dim: f.head_dim,
        d_model: f.d_model,
        ffn_dim: f.ffn_dim,
        context_length: f.context_length,
        sliding_window: f.sliding_window,
        sliding_layers: f.layer_windows.iter().filter(|w| w.is_some()).count(),
        vocab_size: f.vocab_size,
        license: f.license.clone(),
        license_verdict,
        license_reason,
        tensor_types: f.tensor_types.clone(),
        weight_bytes: f.weight_bytes,
        file_bytes: f.file_bytes,
        memory_bytes: memory.total_bytes,
        memory,
        machine,
        verdicts,
        provenance: f.provenance.clone(),
    }
}

/// Bytes as GB (10^9, as the seed's guide counts), or MB below one GB.
pub fn gb(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.2} GB", bytes as f64 / 1e9)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// A count as `268.1M` / `7.24B`.
pub fn human_count(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2}B", n as f64 / 1e9)
    } else {
        format!("{:.1}M", n as f64 / 1e6)
    }
}

fn verdicts(
    f: &ModelFacts,
    memory: &MemoryEstimate,
    machine: &Machine,
    license: LicenseVerdict,
    license_reason: &str,
) -> Vec<Criterion> {
    let row = |c: &str, value: String, status: Status, why: String| Criterion {
        criterion: c.to_string(),
        value,
        status,
        why,
    };
    let size = if f.parameters >= MIN_PARAMETERS {
        (
            Status::Pass,
            "at or above the guide's 7B: strong general ability".to_string(),
        )
    } else if f.parameters >= 1_000_000_000 {
        (
            Status::Warn,
            "below the guide's 7B: weaker on open-ended tasks".to_string(),
        )
    } else {
        (
            Status::Fail,
            "far below the guide's 7B: fine for tests and narrow tasks, weak at general ones"
                .to_string(),
        )
    };
    let context = if f.context_length >= MIN_CONTEXT {
        (
            Status::Pass,
            format!("at least the guide's {MIN_CONTEXT} positions"),
        )
    } else {
        (
            Status::Fail,
            format!("below the guide's {MIN_CONTEXT} positions"),
        )
    };
    let lic_status = match license {
        LicenseVerdict::Permissive => Status::Pass,
        LicenseVerdict::Restricted | LicenseVerdict::Unknown => Status::Warn,
    };
    let cpu = match &f.runs_here {
        Ok(()) => (
            Status::Pass,
            format!(
                "hearth runs `{}` on CPU{}",
                f.architecture,
                if f.format == SourceFormat::SafetensorsDir {
                    " (after `hearth convert` or `hearth quantize` to GGUF)"
                } else {
                    ""
                }
            ),
        ),
        Err(why) => (Status::Fail, why.clone()),
    };
    let quantized = quantized_bytes(f);
    let qsize = if quantized < MAX_QUANTIZED_BYTES {
        (Status::Pass, "under the guide's 10 GB".to_string())
    } else {
        (
            Status::Fail,
            "over the guide's 10 GB even at 4 bits".to_string(),
        )
    };
    let fits = if machine.ram_total_bytes == 0 {
        (
            Status::Warn,
            "could not read this machine's memory".to_string(),
        )
    } else if memory.total_bytes * 10 <= machine.ram_available_bytes * 8 {
        (
            Status::Pass,
            format!("{} available", gb(machine.ram_available_bytes)),
        )
    } else if memory.total_bytes <= machine.ram_total_bytes {
        (
            Status::Warn,
            format!(
                "close to the {} available of {} total",
                gb(machine.ram_available_bytes),
                gb(machine.ram_total_bytes)
            ),
        )
    } else {
        (
            Status::Fail,
            format!("more than the {} of RAM", gb(machine.ram_total_bytes)),
        )
    };
    vec![
        row(
            "parameters >= 7B",
            human_count(f.parameters),
            size.0,
            size.1,
        ),
        row(
            "context >= 2048",
            f.context_length.to_string(),
            context.0,
            context.1,
        ),
        row(
            "licence",
            f.license.clone().unwrap_or_else(|| "none stated".into()),
            lic_status,
            license_reason.to_string(),
        ),
        row("CPU inference", f.architecture.clone(), cpu.0, cpu.1),
        row("quantized size < 10 GB", gb(quantized), qsize.0, qsize.1),
        row(
            "fits this machine",
            format!(
                "{} at ctx {} x {}",
                gb(memory.total_bytes),
                memory.ctx,
                memory.batch
            ),
            fits.0,
            fits.1,
        ),
    ]
}

/// The smaller of the current size and the size at about Q4_K_M.
fn quantized_bytes(f: &ModelFacts) -> u64 {
    let q4 = (f.parameters as f64 * Q4_K_M_BITS / 8.0) as u64;
    f.weight_bytes.min(q4)
}
