//! The `hearth` command line: parses flags, builds library objects, shows progress,
//! prints results. Logic lives in the libraries.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run, serve, adapt and govern open language models on your own hardware.
#[derive(Parser, Debug)]
#[command(name = "hearth", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fetch a model into the local cache and print its path.
    Pull(commands::pull::PullArgs),
    /// Generate a continuation of a prompt.
    Generate(commands::generate::GenerateArgs),
    /// Chat with a model in the terminal (or answer a conversation read from stdin).
    Chat(commands::chat::ChatArgs),
    /// Show the token ids and pieces of a text.
    Tokenize(commands::tokenize::TokenizeArgs),
    /// Measure perplexity on a text file (llama-perplexity's protocol).
    Perplexity(commands::perplexity::PerplexityArgs),
    /// Benchmark prefill and decode against llama.cpp on the same model.
    Bench(commands::bench::BenchArgs),
    /// Find or redact personal data and secrets in a text file, line by line.
    Guard(commands::guard::GuardArgs),
    /// Serve a model over an OpenAI-compatible HTTP API with a chat page.
    Serve(commands::serve::ServeArgs),
    /// Manage API keys and see their usage.
    Keys(commands::keys::KeysArgs),
    /// Build clean training sets: dedup, quality, domains, perplexity, PII, pipelines.
    Data(commands::data::DataArgs),
    /// Show a model's shape, licence, memory needs and the selection checklist.
    Inspect(commands::inspect::InspectArgs),
    /// Quantize F32/F16/BF16 weights to a GGUF type or mixture (Q8_0, Q4_K_M, ...).
    Quantize(commands::quantize::QuantizeArgs),
    /// Factor projection matrices into low-rank SVD pairs (hearth-only files), or sweep
    /// ranks for parameters saved against perplexity lost.
    Compress(commands::compress::CompressArgs),
    /// Convert GGUF to a Hugging Face style directory (safetensors) and back.
    Convert(commands::convert::ConvertArgs),
    /// Fold a LoRA adapter (PEFT directory or GGUF LoRA) into a GGUF base model.
    Merge(commands::merge::MergeArgs),
    /// Compare a converted model with its source: size, perplexity, top-1 agreement.
    Compare(commands::compare::CompareArgs),
    /// Fine-tune a LoRA adapter on chat/instruction data (PEFT and GGUF LoRA output).
    Finetune(commands::finetune::FinetuneArgs),
    /// Distill a smaller student from a teacher (KL on cached top-k logits + hard labels).
    Distill(commands::distill::DistillArgs),
    /// Score a model (or a server) on a question set: accuracy and answer latency p50/p95.
    Eval(commands::eval::EvalArgs),
    /// Run attack suites against an OpenAI-compatible server and report compliance and leaks.
    Redteam(commands::redteam::RedteamArgs),
}

/// `hearth guard scan ... | head` ends quietly, as `cat` does, instead of panicking in
/// `println!` once the reader has gone: a closed pipe ends the process (SIGPIPE's
/// default, which Rust's runtime replaces with "ignore"). The server keeps "ignore":
/// a client going away must never end it.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: sets the disposition of one signal to its default before any thread that
    // could race with it is started; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,hearth_server=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    let result = match &cli.command {
        Command::Pull(a) => commands::pull::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Chat(a) => commands::chat::run(a),
        Command::Tokenize(a) => commands::tokenize::run(a),
        Command::Perplexity(a) => commands::perplexity::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Guard(a) => commands::guard::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Keys(a) => commands::keys::run(a),
        Command::Data(a) => commands::data::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Quantize(a) => commands::quantize::run(a),
        Command::Compress(a) => commands::compress::run(a),
        Command::Finetune(a) => commands::finetune::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Distill(a) => commands::distill::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Merge(a) => commands::merge::run(a),
        Command::Compare(a) => commands::compare::run(a),
        Command::Redteam(a) => commands::redteam::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
