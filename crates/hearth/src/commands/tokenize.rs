//! `hearth tokenize`: ids and pieces of a text, as the model sees it.

use super::ModelArgs;

/// Flags of `hearth tokenize`.
#[derive(clap::Args, Debug)]
pub struct TokenizeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text (BOS added per the model's metadata; special tokens parsed).
    #[arg(long)]
    pub text: String,
    /// Print one JSON object: {"ids": [...], "pieces": [...]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &TokenizeArgs) -> anyhow::Result<()> {
    let tok = args.model.load_tokenizer()?;
    let ids = tok.encode(&args.text, true, true)?;
    let pieces: Vec<String> = ids
        .iter()
        .map(|&id| String::from_utf8_lossy(&tok.token_bytes(id, true)).into_owned())
        .collect();
    if args.json {
        println!("{}", serde_json::json!({ "ids": ids, "pieces": pieces }));
    } else {
        for (id, piece) in ids.iter().zip(&pieces) {
            println!("{id:>8} {piece:?}");
        }
    }
    Ok(())
}
