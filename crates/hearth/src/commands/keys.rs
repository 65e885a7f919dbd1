//! `hearth keys`: add, list and revoke API keys, and show usage.

use hearth_server::{InputPolicy, KeyLimits, OutputPolicy};

use super::serve::{parse_input_policy, parse_output_policy, DbArgs};

/// Flags of `hearth keys`.
#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
    #[command(flatten)]
    pub db: DbArgs,
}

/// What to do with keys.
#[derive(clap::Subcommand, Debug)]
pub enum KeysAction {
    /// Create a key; its secret is printed once, on stdout.
    Add {
        /// A name for the key (unique).
        name: String,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u32>,
        /// Prompt plus completion tokens per UTC day.
        #[arg(long)]
        tokens_per_day: Option<u64>,
        /// This key's input policy (off, redact, block); default: the server's.
        #[arg(long, value_parser = parse_input_policy)]
        input_policy: Option<InputPolicy>,
        /// This key's output policy (off, flag, block); default: the server's.
        #[arg(long, value_parser = parse_output_policy)]
        output_policy: Option<OutputPolicy>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by name or id.
    Revoke {
        /// The key's name or id (`db-3`).
        key: String,
    },
    /// Tokens and requests per key and day.
    Usage,
}

pub fn run(args: &KeysArgs) -> anyhow::Result<()> {
    let store = args.db.open()?;
    match &args.action {
        KeysAction::Add {
            name,
            rpm,
            tokens_per_day,
            input_policy,
            output_policy,
        } => {
            let (k, secret) = store.add_key_with(
                name,
                KeyLimits {
                    requests_per_minute: *rpm,
                    tokens_per_day: *tokens_per_day,
                },
                *input_policy,
                *output_policy,
            )?;
            eprintln!(
                "added key {} ({}); the secret is shown only now:",
                k.name, k.id
            );
            println!("{secret}");
        }
        KeysAction::List => {
            println!(
                "{:<8} {:<20} {:<10} {:>8} {:>14} status",
                "id", "name", "prefix", "rpm", "tokens/day"
            );
            for k in store.keys()? {
                let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
                println!(
                    "{:<8} {:<20} {:<10} {:>8} {:>14} {:>7} {:>7} {}",
                    k.id,
                    k.name,
                    k.prefix,
                    opt(k.limits.requests_per_minute.map(u64::from)),
                    opt(k.limits.tokens_per_day),
                    k.input_policy.map_or("-", InputPolicy::as_str),
                    k.output_policy.map_or("-", OutputPolicy::as_str),
                    if k.revoked { "revoked" } else { "active" }
                );
            }
        }
        KeysAction::Revoke { key } => {
            if !store.revoke(key)? {
                anyhow::bail!("no key named or numbered '{key}'");
            }
            eprintln!("revoked {key}");
        }
        KeysAction::Usage => {
            println!(
                "{:<10} {:<12} {:>9} {:>14} {:>18}",
                "key", "day", "requests", "prompt_tokens", "completion_tokens"
            );
            for (key, day, u) in store.usage_rows()? {
                println!(
                    "{key:<10} {day:<12} {:>9} {:>14} {:>18}",
                    u.requests, u.prompt_tokens, u.completion_tokens
                );
            }
        }
    }
    Ok(())
}
