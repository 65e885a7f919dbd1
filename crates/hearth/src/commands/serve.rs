//! `hearth serve`: the OpenAI-compatible server. Binds first (so `/health` answers 503
//! while the model loads), loads the model, then serves until SIGTERM or Ctrl-C, after
//! which in-flight requests get `--shutdown-grace` seconds to finish.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use hearth_engine::pooled::model_identity;
use hearth_engine::{Engine, EngineConfig};
use hearth_guard::moderation::ModerationProbe;
use hearth_server::{
    AppState, Auth, CorsOrigins, GuardPolicy, InputPolicy, KeyLimits, OutputPolicy, ServedModel,
    ServerOptions, Store,
};

use super::ModelArgs;

/// Flags of `hearth serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Serve a LoRA adapter (PEFT directory or GGUF LoRA file) as NAME: requests
    /// select it with `"model": "NAME"` or `"<model>:NAME"` (repeatable).
    #[arg(long, value_name = "NAME=PATH")]
    pub lora: Vec<String>,
    /// The model's name in requests and answers (default: the file's stem).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// An API key clients must send (repeatable). Keys added with `hearth keys` count too.
    #[arg(long = "api-key", env = "HEARTH_API_KEY")]
    pub api_keys: Vec<String>,
    /// A file of API keys, one per line (`#` starts a comment).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// Requests per minute for keys given by flag or file (and for anonymous callers).
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per UTC day for keys given by flag or file (and for anonymous callers).
    #[arg(long)]
    pub tokens_per_day: Option<u64>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Memory for the KV cache, in MiB.
    #[arg(long, default_value_t = 512)]
    pub kv_cache_mb: usize,
    /// Most sequences decoded together.
    #[arg(long, default_value_t = 16)]
    pub max_running: usize,
    /// Most requests waiting beyond the running batch (more get 429).
    #[arg(long, default_value_t = 64)]
    pub max_queued: usize,
    /// Turn off prefix (KV) cache reuse.
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Browser origins allowed by CORS: `localhost`, `*`, or a comma-separated list.
    #[arg(long, default_value = "localhost")]
    pub cors_origins: String,
    /// Log prompt text, with personal data redacted (off by default).
    #[arg(long)]
    pub log_prompts: bool,
    /// Default input policy (keys may have their own): off, redact (personal data
    /// replaced by placeholders before the model sees it) or block (refuse requests with
    /// personal data or flagged content).
    #[arg(long, default_value = "off", value_parser = parse_input_policy)]
    pub input_policy: InputPolicy,
    /// Default output policy: off, flag (log and count flagged replies) or block (stop
    /// replies before flagged content, redact personal data; streamed too).
    #[arg(long, default_value = "off", value_parser = parse_output_policy)]
    pub output_policy: OutputPolicy,
    /// New tokens of a chat reply when the request sets no `max_tokens` (default: the
    /// rest of the context, as vLLM).
    #[arg(long)]
    pub default_max_tokens: Option<usize>,
    /// Sampling temperature of chat and completion requests that set none (0: greedy,
    /// as llama-server's `--temp`; vLLM's `--override-generation-config`).
    #[arg(long, default_value_t = 1.0)]
    pub default_temperature: f32,
    /// In /v1/moderations, ask the served model for a second opinion (Llama Guard style).
    #[arg(long)]
    pub moderation_judge: bool,
    /// Ask the judge through this served adapter (a `--lora NAME`), e.g. one trained with
    /// `hearth guard eval-moderation --write-judge-training` and `hearth finetune`
    /// (docs/GUARD.md). Implies --moderation-judge.
    #[arg(long, value_name = "NAME")]
    pub moderation_judge_lora: Option<String>,
    /// How the judge's verdict merges with the term lists: `confirm` (the judge counts
    /// where the lists saw some evidence; fewer false flags, docs/GUARD.md), `max`
    /// (either source flags), `judge-only`, `weighted`.
    #[arg(long, value_enum, default_value = "confirm")]
    pub moderation_judge_merge: super::guard_eval::MergeChoice,
    /// Where the judge gives "unsafe" a probability below this (of "unsafe" against
    /// "safe" as its first token, Llama Guard's score), every score is capped at that
    /// probability, so the term lists alone cannot flag the text. Off (0) by default: 0.1
    /// gained precision on the dev half but not on the held-out half (docs/GUARD.md).
    #[arg(long, default_value_t = 0.0, value_name = "P", value_parser = parse_probability)]
    pub moderation_judge_veto: f32,
    /// In /v1/moderations, add the opinion of a probe trained on this model's hidden
    /// states (`hearth guard train-probe`): a text is flagged where the lists, the judge
    /// or the probe flag it, unless the probe's probability is below its veto
    /// (`train-probe --veto`). A probe trained on another model is a startup error.
    #[arg(long, value_name = "FILE")]
    pub moderation_probe: Option<std::path::PathBuf>,
    /// PII kinds the input/output policies look for: labels (`EMAIL,PERSON,ADDRESS`),
    /// `default` (every kind but names and addresses) or `all`, comma-separated.
    #[arg(long, default_value = "default", value_parser = super::guard::parse_kinds)]
    pub pii_kinds: super::guard::KindList,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace: u64,
}

/// Where keys and usage live.
#[derive(clap::Args, Debug, Clone)]
pub struct DbArgs {
    /// SQLite database of API keys and usage (default: `<cache>/usage.sqlite`).
    #[arg(long, env = "HEARTH_USAGE_DB", global = true)]
    pub usage_db: Option<PathBuf>,
}

impl DbArgs {
    /// Opens the database.
    pub fn open(&self) -> anyhow::Result<Store> {
        let path = self
            .usage_db
            .clone()
            .unwrap_or_else(|| hearth_hub::cache_dir().join("usage.sqlite"));
        Store::open(&path).with_context(|| format!("opening {}", path.display()))
    }
}

/// Parses `off|redact|block`.
pub fn parse_input_policy(s: &str) -> Result<InputPolicy, String> {
    InputPolicy::parse(s).ok_or_else(|| format!("'{s}' is not one of off, redact, block"))
}

/// Parses `off|flag|block`.
pub fn parse_output_policy(s: &str) -> Result<OutputPolicy, String> {
    OutputPolicy::parse(s).ok_or_else(|| format!("'{s}' is not one of off, flag, block"))
}

fn read_key_file(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the API key file", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=2.0).contains(&args.default_temperature),
        "--default-temperature must be in [0, 2], got {}",
        args.default_temperature
    );
    let mut keys = args.api_keys.clone();
    if let Some(f) = &args.api_key_file {
        keys.extend(read_key_file(f)?);
    }
    let store = Arc::new(args.db.open()?);
    let limits = KeyLimits {
        requests_per_minute: args.rpm,
        tokens_per_day: args.tokens_per_day,
    };
    let policy = GuardPolicy {
        input: args.input_policy,
        output: args.output_policy,
    };
    let auth = Auth::with_policy(&keys, limits, policy, Some(Arc::clone(&store)));
    if !auth.required() {
        tracing::warn!("no API keys configured: the API is open to anyone who can reach it");
    }
    let probe = match &args.moderation_probe {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--moderation-probe {}: reading", path.display()))?;
            let probe = ModerationProbe::from_json(&text)
                .with_context(|| format!("--moderation-probe {}", path.display()))?;
            Some(Arc::new(probe))
        }
        None => None,
    };
    let state = AppState::new(
        auth,
        ServerOptions {
            log_prompts: args.log_prompts,
            cors: CorsOrigins::parse(&args.cors_origins),
            moderation_judge: args.moderation_judge || args.moderation_judge_lora.is_some(),
            moderation_judge_lora: args.moderation_judge_lora.clone(),
            moderation_judge_merge: args.moderation_judge_merge.rule(),
            moderation_judge_veto: args.moderation_judge_veto,
            moderation_probe: probe.clone(),
            default_max_tokens: args.default_max_tokens,
            default_temperature: args.default_temperature,
            pii_kinds: args.pii_kinds.0.clone(),
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        eprintln!("hearth: listening on http://{addr} (loading the model)");
        let loader_state = Arc::clone(&state);
        let model_args = args.model.clone();
        let name = args.served_model_name.clone();
        let loras = lora_specs(&args.lora)?;
        let probe_path = args.moderation_probe.clone();
        if let Some(judge) = &args.moderation_judge_lora {
            anyhow::ensure!(
                loras.iter().any(|(n, _)| n == judge),
                "--moderation-judge-lora {judge}: no `--lora {judge}=PATH` is served"
            );
        }
        let cfg = EngineConfig {
            kv_budget_bytes: args.kv_cache_mb << 20,
            max_running: args.max_running,
            max_queued_requests: args.max_queued,
            prefix_cache: !args.no_prefix_cache,
            ..EngineConfig::default()
        };
        let loader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let served = load(&model_args, name, cfg)?;
            if let (Some(probe), Some(path)) = (&probe, &probe_path) {
                let runs = model_identity(served.engine.model());
                anyhow::ensure!(
                    probe.features.model == runs,
                    "--moderation-probe {}: trained on `{}`, but this server runs `{runs}`",
                    path.display(),
                    probe.features.model
                );
            }
            for (n, p) in &loras {
                served
                    .engine
                    .load_adapter_from(n, p)
                    .with_context(|| format!("--lora {n}={}", p.display()))?;
                eprintln!("hearth: LoRA adapter {n} from {}", p.display());
            }
            eprintln!(
                "hearth: serving {} (context {}) on http://{addr}",
                served.name, served.context_length
            );
            loader_state.set_model(served);
            Ok(())
        });
        let server = hearth_server::serve(
            listener,
            Arc::clone(&state),
            shutdown_signal(),
            Duration::from_secs(args.shutdown_grace),
        );
        tokio::pin!(server);
        tokio::select! {
            r = &mut server => return r.context("serving"),
            r = loader => r.context("model loader")??,
        }
        server.await.context("serving")
    })
}

/// `NAME=PATH` pairs of `--lora`.
fn lora_specs(specs: &[String]) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    specs
        .iter()
        .map(|s| match s.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains(':') && !p.is_empty() => {
                Ok((n.to_string(), std::path::PathBuf::from(p)))
            }
            _ => anyhow::bail!("--lora `{s}`: expected NAME=PATH (NAME without ':')"),
        })
        .collect()
}

fn load(args: &ModelArgs, name: Option<String>, cfg: EngineConfig) -> anyhow::Result<ServedModel> {
    let path_name = std::path::Path::new(&args.model)
        .file_stem()
        .map_or_else(|| args.model.clone(), |s| s.to_string_lossy().into_owned());
    let m = args.load()?;
    let template = super::chat::template_for(&m)?;
    let context_length = m.model.config().context_length;
    let tokenizer = Arc::new(m.tokenizer);
    let engine = Engine::start(Arc::new(m.model), Arc::clone(&tokenizer), cfg)?;
    Ok(ServedModel {
        name: name.unwrap_or(path_name),
        engine,
        tokenizer,
        template,
        context_length,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A probability in `0..=1`.
fn parse_probability(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a probability between 0 and 1, got '{s}'")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_files_hold_one_key_per_line_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.txt");
        std::fs::write(&p, "# team keys\nsk-one\n\n  sk-two   # bob\n#sk-old\n").unwrap();
        assert_eq!(read_key_file(&p).unwrap(), vec!["sk-one", "sk-two"]);
        let missing = read_key_file(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{missing:#}").contains("nope"), "{missing:#}");
    }

    #[test]
    fn probabilities_outside_zero_to_one_are_refused() {
        assert_eq!(parse_probability("0.1").unwrap(), 0.1);
        assert_eq!(parse_probability("0").unwrap(), 0.0);
        for bad in ["1.5", "-0.1", "often", "NaN"] {
            let e = parse_probability(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
