//! A text's pooled hidden state: the features a moderation probe (or any linear probe)
//! reads from the model.

use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;

use crate::Result;

/// How [`mean_hidden`] pools, in the words a probe file records.
pub const MEAN_POOLING: &str = "mean";

/// The mean of the normalised hidden states after `depth` blocks (`None`: all of them,
/// the final hidden states) over the first `max_tokens` tokens of `text` (BOS added as
/// the model wants, then left out of the mean unless it is all there is): `d_model`
/// values.
pub fn mean_hidden(
    model: &Transformer,
    tokenizer: &Tokenizer,
    text: &str,
    max_tokens: usize,
    depth: Option<usize>,
) -> Result<Vec<f32>> {
    let mut tokens = tokenizer.encode(text, true, false)?;
    tokens.truncate(max_tokens.max(1));
    let bos = tokenizer.bos().filter(|_| tokenizer.add_bos());
    if tokens.is_empty() {
        tokens.push(bos.unwrap_or(0));
    }
    let skip = usize::from(tokens.len() > 1 && bos.is_some() && tokens.first() == bos.as_ref());
    let depth = depth.unwrap_or(model.config().layers.len());
    let hidden = model
        .hidden_at_depths(&tokens, &[depth])?
        .pop()
        .unwrap_or_default();
    let d = model.config().d_model;
    let mut mean = vec![0f32; d];
    for row in hidden.chunks_exact(d).skip(skip) {
        mean.iter_mut().zip(row).for_each(|(m, x)| *m += x);
    }
    let n = (tokens.len() - skip) as f32;
    mean.iter_mut().for_each(|m| *m /= n);
    Ok(mean)
}

/// The identity a probe records for `model`, so a probe trained on one model is not
/// applied to another: architecture, width, depth, vocabulary and `general.name`.
pub fn model_identity(model: &Transformer) -> String {
    let c = model.config();
    let name = model
        .gguf()
        .str_opt("general.name")
        .ok()
        .flatten()
        .unwrap_or("unnamed");
    format!(
        "{} d{} L{} V{} {name}",
        c.architecture,
        c.d_model,
        c.layers.len(),
        c.vocab_size
    )
}
