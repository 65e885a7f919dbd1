//! Conversations to token ids with a loss mask on the assistant's tokens only,
//! rendered with the model's own chat template.
//!
//! Each assistant turn's text is located by rendering the conversation up to it twice:
//! before it with the generation prompt (what the model sees at inference), and
//! including it. Their difference is the turn as the model must write it, end-of-turn
//! token included. The text is tokenized piece by piece at those boundaries, so the
//! assistant's tokens are exactly those the model would emit after the prompt.

use hearth_tokenizer::chat::{ChatMessage, ChatTemplate};
use hearth_tokenizer::Tokenizer;

use crate::data::Example;
use crate::{Error, Result};

/// One conversation as the model reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Token ids.
    pub tokens: Vec<u32>,
    /// `mask[i]`: token `i` is an assistant token, learned from the tokens before it.
    pub mask: Vec<bool>,
}

impl Encoded {
    /// Tokens that carry loss.
    pub fn n_targets(&self) -> usize {
        self.mask.iter().skip(1).filter(|&&m| m).count()
    }
}

/// Renders and tokenizes `ex`, keeping at most `max_len` tokens.
pub fn encode(
    tok: &Tokenizer,
    tpl: &ChatTemplate,
    ex: &Example,
    max_len: usize,
) -> Result<Encoded> {
    let full = tpl.render(&ex.messages, false)?;
    let mut spans = Vec::new();
    for (i, m) in ex.messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let before = tpl.render(&ex.messages[..i], true)?;
        let with = tpl.render(&ex.messages[..=i], false)?;
        let fits = with.starts_with(&before) && full.starts_with(&with);
        if !fits {
            return Err(Error::Template(format!(
                "turn {} renders differently once later turns follow",
                i + 1
            )));
        }
        spans.push((before.len(), with.len()));
    }
    let mut tokens = Vec::new();
    let mut mask = Vec::new();
    let mut push = |text: &str, learn: bool| -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let ids = tok.encode(text, false, true)?;
        mask.extend(std::iter::repeat_n(learn, ids.len()));
        tokens.extend(ids);
        Ok(())
    };
    let mut at = 0;
    for &(s, e) in &spans {
        push(&full[at..s], false)?;
        push(&full[s..e], true)?;
        at = e;
    }
    push(&full[at..], false)?;
    if let Some(bos) = tok.bos().filter(|_| tok.add_bos()) {
        if tokens.first() != Some(&bos) {
            tokens.insert(0, bos);
            mask.insert(0, false);
        }
    }
    tokens.truncate(max_len);
    mask.truncate(max_len);
    Ok(Encoded { tokens, mask })
}

/// Tokens of the prompt for generating the reply to `messages` (the template's
/// generation prompt appended), as inference builds it.
pub fn prompt_tokens(
    tok: &Tokenizer,
    tpl: &ChatTemplate,
    messages: &[ChatMessage],
) -> Result<Vec<u32>> {
    Ok(tok.encode_chat(&tpl.render(messages, true)?)?)
}

/// Plain text as windows of `seq_len` tokens (the last one may be shorter; one of a
/// single token is dropped), every token after a window's first a target. The text is
/// tokenized whole, with the model's BOS token if it adds one.
pub fn text_windows(tok: &Tokenizer, text: &str, seq_len: usize) -> Result<Vec<Encoded>> {
    if seq_len < 2 {
        return Err(Error::Config(format!(
            "sequence length {seq_len} must be at least 2"
        )));
    }
    let ids = tok.encode(text, true, false)?;
    Ok(ids
        .chunks(seq_len)
        .filter(|w| w.len() >= 2)
        .map(|w| Encoded {
            tokens: w.to_vec(),
            mask: vec![true; w.len()],
        })
        .collect())
}
