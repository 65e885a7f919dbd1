//! `hearth generate`: one prompt in, streamed text out.

use std::io::Write;

use hearth_engine::{GenerateParams, SamplingParams, Session};
use hearth_tokenizer::chat::ChatMessage;

use super::{chat::template_for, ModelArgs};

/// Sampling flags shared by `generate` and `chat`.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Most new tokens.
    #[arg(long, short = 'n', default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep the k most likely tokens (0: off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling mass (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens below this fraction of the top probability (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalty for repeating recent tokens (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// OpenAI-style frequency penalty.
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    /// OpenAI-style presence penalty.
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// Seed for reproducible sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop before this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    pub fn params(&self) -> GenerateParams {
        GenerateParams {
            max_tokens: self.max_tokens,
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repetition_penalty: self.repeat_penalty,
                frequency_penalty: self.frequency_penalty,
                presence_penalty: self.presence_penalty,
                seed: self.seed,
                ..SamplingParams::default()
            },
            stop: self.stop.clone(),
            ignore_eos: false,
            logprobs: None,
        }
    }
}

/// Flags of `hearth generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Raw prompt text (BOS per metadata, special tokens parsed, no chat template).
    #[arg(long, short = 'p')]
    pub prompt: String,
    /// Wrap the prompt as one user turn with the model's chat template.
    #[arg(long)]
    pub chat: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Print one JSON object (ids, text, timings) instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// Run with a LoRA adapter: a PEFT directory or a GGUF LoRA file.
    #[arg(long)]
    pub lora: Option<std::path::PathBuf>,
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let m = args.model.load()?;
    let prompt_ids = if args.chat {
        let tpl = template_for(&m)?;
        let text = tpl.render(
            &[ChatMessage {
                role: "user".into(),
                content: args.prompt.clone(),
            }],
            true,
        )?;
        m.tokenizer.encode_chat(&text)?
    } else {
        m.tokenizer.encode(&args.prompt, true, true)?
    };
    let params = args.sampling.params();
    let mut session = Session::new(&m.model).with_lora(m.lora(args.lora.as_deref())?);
    let mut stdout = std::io::stdout().lock();
    let mut io_err = None;
    let json = args.json;
    let g = session.generate(&m.tokenizer, &prompt_ids, &params, &mut |s| {
        if !json && io_err.is_none() {
            if let Err(e) = stdout.write_all(s.as_bytes()).and_then(|_| stdout.flush()) {
                io_err = Some(e);
            }
        }
    })?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    if json {
        let v = serde_json::json!({
            "prompt_ids": prompt_ids,
            "generated_ids": g.generated_ids,
            "text": g.text,
            "finish_reason": g.finish_reason.as_str(),
            "prefill_tok_s": g.prefill_tok_s(),
            "decode_tok_s": g.decode_tok_s(),
            "prefill_secs": g.prefill_secs,
            "decode_secs": g.decode_secs,
        });
        writeln!(stdout, "{v}")?;
    } else {
        writeln!(stdout)?;
        eprintln!(
            "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, finish: {}]",
            prompt_ids.len(),
            g.prefill_tok_s(),
            g.generated_ids.len(),
            g.decode_tok_s(),
            g.finish_reason.as_str()
        );
    }
    Ok(())
}
