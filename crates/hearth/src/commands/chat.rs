//! `hearth chat`: multi-turn chat with the model's template, streamed to the terminal;
//! with stdin not a terminal, answers the conversation read from it.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::Context;
use hearth_engine::Session;
use hearth_tokenizer::chat::{ChatMessage, ChatTemplate};

use super::{generate::SamplingArgs, Loaded, ModelArgs};

/// Flags of `hearth chat`.
#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A system prompt.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Chat with a LoRA adapter: a PEFT directory or a GGUF LoRA file.
    #[arg(long)]
    pub lora: Option<std::path::PathBuf>,
}

/// The chat template for a loaded model: the file's, or the family's built-in one.
pub fn template_for(m: &Loaded) -> anyhow::Result<ChatTemplate> {
    template_from(&m.tokenizer, &m.model.config().architecture)
}

/// The chat template of a model's tokenizer, or its family's built-in one.
pub fn template_from(
    tok: &hearth_tokenizer::Tokenizer,
    architecture: &str,
) -> anyhow::Result<ChatTemplate> {
    let text = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_string();
    Ok(ChatTemplate::for_model(
        tok.chat_template(),
        architecture,
        &text(tok.bos()),
        &text(tok.eos()),
    )?)
}

pub fn run(args: &ChatArgs) -> anyhow::Result<()> {
    let m = args.model.load()?;
    let tpl = template_for(&m)?;
    let mut messages = Vec::new();
    if let Some(s) = &args.system {
        messages.push(ChatMessage {
            role: "system".into(),
            content: s.clone(),
        });
    }
    let mut session = Session::new(&m.model).with_lora(m.lora(args.lora.as_deref())?);
    let params = args.sampling.params();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut input = String::new();
        stdin
            .lock()
            .read_to_string(&mut input)
            .context("reading the conversation from stdin")?;
        messages.extend(parse_conversation(&input)?);
        reply(&m, &tpl, &mut session, &messages, &params)?;
        return Ok(());
    }
    eprintln!(
        "Chatting with {} (type /reset to start over, /exit or Ctrl-D to leave).",
        args.model.model
    );
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        std::io::stderr().flush()?;
        let Some(line) = lines.next().transpose()? else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages.retain(|m: &ChatMessage| m.role == "system");
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage {
            role: "user".into(),
            content: line.to_string(),
        });
        let text = reply(&m, &tpl, &mut session, &messages, &params)?;
        messages.push(ChatMessage {
            role: "assistant".into(),
            content: text,
        });
    }
    Ok(())
}

fn reply(
    m: &Loaded,
    tpl: &ChatTemplate,
    session: &mut Session<'_>,
    messages: &[ChatMessage],
    params: &hearth_engine::GenerateParams,
) -> anyhow::Result<String> {
    let ids = m.tokenizer.encode_chat(&tpl.render(messages, true)?)?;
    let mut out = std::io::stdout().lock();
    let g = session.generate(&m.tokenizer, &ids, params, &mut |s| {
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    })?;
    writeln!(out)?;
    Ok(g.text.trim().to_string())
}

/// A conversation from stdin: a JSON array of `{"role", "content"}` messages (or an
/// object with a `messages` array); any other text is one user message.
fn parse_conversation(input: &str) -> anyhow::Result<Vec<ChatMessage>> {
    let trimmed = input.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(trimmed).context("stdin looks like JSON but does not parse")?;
        let list = v.get("messages").unwrap_or(&v).clone();
        let messages: Vec<ChatMessage> = serde_json::from_value(list)
            .context("stdin JSON must be a list of {\"role\", \"content\"} messages")?;
        anyhow::ensure!(
            !messages.is_empty(),
            "the conversation on stdin has no messages"
        );
        return Ok(messages);
    }
    anyhow::ensure!(!trimmed.is_empty(), "nothing to answer: stdin is empty");
    Ok(vec![ChatMessage {
        role: "user".into(),
        content: trimmed.to_string(),
    }])
}
