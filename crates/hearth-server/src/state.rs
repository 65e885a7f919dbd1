//! What every handler shares: the served model (once loaded), keys, counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use hearth_engine::Engine;
use hearth_tokenizer::chat::ChatTemplate;
use hearth_tokenizer::Tokenizer;

use crate::auth::Auth;
use crate::guard::Guard;
use crate::ApiError;

/// A model ready to serve.
pub struct ServedModel {
    /// Its name in requests and `/v1/models`.
    pub name: String,
    /// The engine running it.
    pub engine: Engine,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// Its chat template.
    pub template: ChatTemplate,
    /// Most tokens one sequence may hold.
    pub context_length: usize,
    /// Unix seconds it was loaded.
    pub created: u64,
}

impl std::fmt::Debug for ServedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedModel")
            .field("name", &self.name)
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

/// Which browser origins may call the API (CORS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin is reflected.
    Any,
    /// Only pages served from this machine (`localhost`, `127.0.0.1`, `[::1]`).
    Localhost,
    /// These exact origins.
    List(Vec<String>),
}

impl CorsOrigins {
    /// Parses `*`, `localhost`, or a comma-separated list of origins.
    pub fn parse(s: &str) -> CorsOrigins {
        match s.trim() {
            "*" => CorsOrigins::Any,
            "localhost" => CorsOrigins::Localhost,
            list => CorsOrigins::List(
                list.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect(),
            ),
        }
    }

    /// Whether a request from `origin` may read our answers.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            CorsOrigins::Any => true,
            CorsOrigins::List(l) => l.iter().any(|o| o == origin),
            CorsOrigins::Localhost => {
                let Some(rest) = origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                else {
                    return false;
                };
                // `host[:port]` or `[v6][:port]`.
                let (host, port) = match rest.strip_prefix('[') {
                    Some(v6) => match v6.split_once(']') {
                        Some((h, "")) => (h, None),
                        Some((h, after)) => match after.strip_prefix(':') {
                            Some(p) => (h, Some(p)),
                            None => return false,
                        },
                        None => return false,
                    },
                    None => match rest.split_once(':') {
                        Some((h, p)) => (h, Some(p)),
                        None => (rest, None),
                    },
                };
                port.is_none_or(|p| p.parse::<u16>().is_ok())
                    && matches!(host, "localhost" | "127.0.0.1" | "::1")
            }
        }
    }
}

/// Server settings that handlers read.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Write prompts and completions to the log (off by default).
    pub log_prompts: bool,
    /// CORS policy.
    pub cors: CorsOrigins,
    /// Ask the served model for a second opinion in `/v1/moderations`.
    pub moderation_judge: bool,
    /// The served LoRA adapter the judge answers through (one trained to give Llama
    /// Guard verdicts, e.g. with `hearth finetune`); `None`: the base model.
    pub moderation_judge_lora: Option<String>,
    /// How the judge's verdict merges with the term lists' scores.
    pub moderation_judge_merge: hearth_guard::moderation::MergeRule,
    /// Where the judge gives "unsafe" a probability below this, the term lists' scores
    /// are capped at it ([`hearth_guard::moderation::veto`]); 0 turns the veto off.
    pub moderation_judge_veto: f32,
    /// A trained probe over the served model's hidden states whose scores join the term
    /// lists' (and the judge's) in `/v1/moderations` ([`ModerationProbe::merge`]: the
    /// higher per category, unless the probe vetoes).
    ///
    /// [`ModerationProbe::merge`]: hearth_guard::moderation::ModerationProbe::merge
    pub moderation_probe: Option<Arc<hearth_guard::moderation::ModerationProbe>>,
    /// New tokens of a chat reply when the request names no limit (`None`: the rest
    /// of the context, as vLLM).
    pub default_max_tokens: Option<usize>,
    /// Sampling temperature when a request sets none (OpenAI's default: 1.0).
    pub default_temperature: f32,
    /// The PII kinds the input and output policies look for (default: every kind but
    /// person names and street addresses).
    pub pii_kinds: Vec<hearth_guard::PiiKind>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            log_prompts: false,
            cors: CorsOrigins::Localhost,
            moderation_judge: false,
            moderation_judge_lora: None,
            moderation_judge_merge: hearth_guard::moderation::MergeRule::Confirm,
            moderation_judge_veto: 0.0,
            moderation_probe: None,
            default_max_tokens: None,
            default_temperature: 1.0,
            pii_kinds: hearth_guard::PiiKind::DEFAULT.to_vec(),
        }
    }
}

/// Shared state of the server.
#[derive(Debug)]
pub struct AppState {
    model: OnceLock<Arc<ServedModel>>,
    /// Keys and limits.
    pub auth: Auth,
    /// Settings.
    pub options: ServerOptions,
    /// PII scanner and moderation.
    pub guard: Guard,
    draining: AtomicBool,
    next_id: AtomicU64,
    /// HTTP responses by status code.
    pub responses: Mutex<BTreeMap<u16, u64>>,
}

impl AppState {
    /// State with no model yet (`/health` answers 503 until [`set_model`](Self::set_model)).
    pub fn new(auth: Auth, options: ServerOptions) -> Arc<AppState> {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let guard = Guard::with_kinds(&options.pii_kinds);
        Arc::new(AppState {
            model: OnceLock::new(),
            auth,
            options,
            guard,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(u64::from_le_bytes(seed) >> 16),
            responses: Mutex::new(BTreeMap::new()),
        })
    }

    /// Installs the loaded model; later calls are ignored.
    pub fn set_model(&self, m: ServedModel) {
        let _ = self.model.set(Arc::new(m));
    }

    /// The model, or 503 while it loads.
    pub fn model(&self) -> Result<Arc<ServedModel>, ApiError> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        self.model
            .get()
            .cloned()
            .ok_or_else(|| ApiError::unavailable("the model is loading"))
    }

    /// The model if loaded (ignores draining).
    pub fn loaded(&self) -> Option<Arc<ServedModel>> {
        self.model.get().cloned()
    }

    /// Stops taking new generation requests.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// A fresh request id with this prefix (`chatcmpl`, `cmpl`, ...).
    pub fn request_id(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{n:016x}")
    }

    /// Counts a response status.
    pub fn count_response(&self, status: u16) {
        *self
            .responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_policy_accepts_only_local_origins() {
        let p = CorsOrigins::Localhost;
        for ok in [
            "http://localhost",
            "http://localhost:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:3000",
            "http://[::1]",
            "http://[::1]:3000",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "http://web.mydomain.fr",
            "http://evil.com",
            "http://notlocalhost",
            "http://localhost.evil.com",
            "localhost",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
    }
}
