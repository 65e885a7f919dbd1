//! The cache directory and the settings that go with it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::registry::ModelInfo;

/// The cache directory: `$HEARTH_CACHE` if set, else `$XDG_CACHE_HOME/hearth`, else
/// `$HOME/.cache/hearth` (empty variables count as unset).
pub fn cache_dir() -> PathBuf {
    cache_dir_from(
        std::env::var_os("HEARTH_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`cache_dir`]'s rule applied to explicit values of `HEARTH_CACHE`, `XDG_CACHE_HOME`
/// and `HOME`. With none of them set it falls back to `hearth-cache` in the system's
/// temporary directory.
pub fn cache_dir_from(
    hearth_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> PathBuf {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(hearth_cache) {
        dir
    } else if let Some(dir) = set(xdg_cache_home) {
        dir.join("hearth")
    } else if let Some(home) = set(home) {
        home.join(".cache").join("hearth")
    } else {
        let dir = std::env::temp_dir().join("hearth-cache");
        tracing::warn!(
            "neither HEARTH_CACHE, XDG_CACHE_HOME nor HOME is set; using {}",
            dir.display()
        );
        dir
    }
}

/// Where llama.cpp's tokenizer test vocabularies (`ggml-vocab-*.gguf` and their
/// `.inp`/`.out` files) live: `<cache>/llama-vocab`, filled by `.ci/fetch-assets`.
pub fn llama_vocab_dir() -> PathBuf {
    cache_dir().join("llama-vocab")
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// A cache directory plus the settings used to fill it.
///
/// [`Cache::from_env`] reads the environment once; [`Cache::at`] uses an explicit
/// directory and defaults, which keeps tests independent of the environment.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    python: String,
    hf_offline: bool,
    hf_endpoint: String,
}

impl Cache {
    /// The default cache ([`cache_dir`]), the Python of `$HEARTH_PYTHON` (default
    /// `python3`), `$HF_HUB_OFFLINE` and `$HF_ENDPOINT` (default `https://huggingface.co`).
    pub fn from_env() -> Self {
        let mut cache = Cache::at(cache_dir()).with_hf_offline(env_flag("HF_HUB_OFFLINE"));
        if let Some(python) = std::env::var("HEARTH_PYTHON")
            .ok()
            .filter(|p| !p.is_empty())
        {
            cache = cache.with_python(python);
        }
        if let Some(url) = std::env::var("HF_ENDPOINT").ok().filter(|p| !p.is_empty()) {
            cache = cache.with_hf_endpoint(url);
        }
        cache
    }

    /// A cache rooted at `root`, with `python3`, the hub online and the default endpoint.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Cache {
            root: root.into(),
            python: "python3".to_string(),
            hf_offline: false,
            hf_endpoint: "https://huggingface.co".to_string(),
        }
    }

    /// Uses this Python interpreter to run pip.
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// Forbids (`true`) or allows network access to the Hugging Face hub.
    pub fn with_hf_offline(mut self, offline: bool) -> Self {
        self.hf_offline = offline;
        self
    }

    /// Uses another base URL for the Hugging Face hub (a mirror).
    pub fn with_hf_endpoint(mut self, url: impl Into<String>) -> Self {
        self.hf_endpoint = url.into().trim_end_matches('/').to_string();
        self
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<cache>/models`: the known models, by file name.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Where a known model lives once pulled: `<cache>/models/<file name>`.
    pub fn model_path(&self, info: &ModelInfo) -> PathBuf {
        self.models_dir().join(info.file_name)
    }

    /// `<cache>/hf`: files fetched from the Hugging Face hub, as `<owner>/<name>/<file>`.
    pub fn hf_dir(&self) -> PathBuf {
        self.root.join("hf")
    }

    /// `<cache>/llama-vocab`: llama.cpp's tokenizer test vocabularies.
    pub fn llama_vocab_dir(&self) -> PathBuf {
        self.root.join("llama-vocab")
    }

    pub(crate) fn python(&self) -> &str {
        &self.python
    }

    pub(crate) fn hf_offline(&self) -> bool {
        self.hf_offline
    }

    pub(crate) fn hf_endpoint(&self) -> &str {
        &self.hf_endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_precedence() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            cache_dir_from(s("/a"), s("/x"), s("/h")),
            PathBuf::from("/a")
        );
        assert_eq!(
            cache_dir_from(s(""), s("/x"), s("/h")),
            PathBuf::from("/x/hearth")
        );
        assert_eq!(
            cache_dir_from(None, s("/x"), s("/h")),
            PathBuf::from("/x/hearth")
        );
        assert_eq!(
            cache_dir_from(None, s(""), s("/h")),
            PathBuf::from("/h/.cache/hearth")
        );
        assert_eq!(
            cache_dir_from(None, None, s("/h")),
            PathBuf::from("/h/.cache/hearth")
        );
        assert!(cache_dir_from(None, None, None).ends_with("hearth-cache"));
    }

    #[test]
    fn layout() {
        let c = Cache::at("/c");
        assert_eq!(
            c.model_path(&crate::SMOLLM2_135M),
            PathBuf::from("/c/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(c.hf_dir(), PathBuf::from("/c/hf"));
        assert_eq!(c.llama_vocab_dir(), PathBuf::from("/c/llama-vocab"));
        assert_eq!(
            Cache::at("/c").with_hf_endpoint("http://m/").hf_endpoint(),
            "http://m"
        );
    }
}
