//! `hearth inspect`: will this model run here, and how well?

use std::path::PathBuf;

use anyhow::Context;
use hearth_convert::inspect::{gb, human_count};
use hearth_convert::InspectReport;

/// Flags of `hearth inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A .gguf file, a Hugging Face style directory (config.json + *.safetensors),
    /// or a short name (gemma3-270m, smollm2-135m).
    pub model: String,
    /// Context length for the memory estimate (default: the model's).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Sequences at once for the memory estimate.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let path: PathBuf = hearth_hub::resolve(&args.model, &super::pull::progress_bar())?;
    let report = hearth_convert::inspect(&path, args.ctx, args.batch)
        .with_context(|| format!("inspecting {}", path.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn print_report(r: &InspectReport) {
    println!("{}", r.path);
    if let Some(n) = &r.name {
        println!("  name            {n}");
    }
    println!("  architecture    {}", r.architecture);
    println!(
        "  parameters      {} ({})",
        r.parameters,
        human_count(r.parameters)
    );
    println!(
        "  layers          {} ({} sliding-window)",
        r.layers, r.sliding_layers
    );
    println!(
        "  heads           {} query, {} key/value, {} dims each; width {}, ffn {}",
        r.heads, r.kv_heads, r.head_dim, r.d_model, r.ffn_dim
    );
    println!("  context         {}", r.context_length);
    match r.sliding_window {
        Some(w) => println!("  sliding window  {w}"),
        None => println!("  sliding window  none"),
    }
    println!("  vocabulary      {}", r.vocab_size);
    println!(
        "  licence         {} -> {} ({})",
        r.license.as_deref().unwrap_or("none stated"),
        r.license_verdict.as_str(),
        r.license_reason
    );
    println!("  tensor types");
    for t in &r.tensor_types {
        println!(
            "    {:<6} {:>4} tensors {:>14} params {:>12}",
            t.dtype,
            t.tensors,
            t.parameters,
            gb(t.bytes)
        );
    }
    let m = &r.memory;
    println!(
        "  memory at ctx {} x batch {}: {} = weights {} + KV cache {} + working {}",
        m.ctx,
        m.batch,
        gb(m.total_bytes),
        gb(m.weights_bytes),
        gb(m.kv_cache_bytes),
        gb(m.working_bytes)
    );
    let mc = &r.machine;
    println!(
        "  this machine    {} RAM ({} available), {} CPUs, GPUs: {}",
        gb(mc.ram_total_bytes),
        gb(mc.ram_available_bytes),
        mc.cpus,
        if mc.gpus.is_empty() {
            "none (CPU-only build)".to_string()
        } else {
            mc.gpus.join(", ")
        }
    );
    if let Some(p) = &r.provenance {
        println!(
            "  provenance      {} by {} {} from {} (sha256 {}), licence {}",
            p.chain().join(" -> "),
            p.tool,
            p.tool_version,
            p.source_file,
            p.source_sha256,
            p.license.as_deref().unwrap_or("none stated")
        );
        for (k, v) in &p.parameters {
            println!("                  {k} = {v}");
        }
    }
    println!();
    println!("  {:<24} {:<26} {:<5} why", "criterion", "value", "");
    for c in &r.verdicts {
        println!(
            "  {:<24} {:<26} {:<5} {}",
            c.criterion,
            c.value,
            c.status.as_str(),
            c.why
        );
    }
}
