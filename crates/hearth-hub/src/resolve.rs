//! Turning a `--model` argument into a local path.

use std::path::{Path, PathBuf};

use crate::registry::{find_model, known_names};
use crate::{Cache, Error, HfSpec, Progress, Result};

impl Cache {
    /// Turns a `--model` argument into a local path:
    ///
    /// 1. an existing file or directory is returned as given;
    /// 2. a known short name ([`crate::known_models`]) is pulled ([`Cache::pull`]);
    /// 3. a Hugging Face repo id ([`HfSpec`]) is looked up under `<cache>/hf`, then
    ///    fetched from the hub unless `HF_HUB_OFFLINE` is set ([`Cache::fetch_hf`]);
    /// 4. anything else is an error that lists the known names.
    pub fn resolve(&self, spec: &str, progress: &dyn Progress) -> Result<PathBuf> {
        let path = Path::new(spec);
        if !spec.is_empty() && path.exists() {
            if path.is_file()
                && !path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
            {
                tracing::warn!("{spec} does not end in .gguf; using it anyway");
            }
            return Ok(path.to_path_buf());
        }
        if let Some(info) = find_model(spec) {
            return Ok(self.pull_model(info, progress)?.path);
        }
        if let Some(hf) = HfSpec::parse(spec) {
            return self.fetch_hf(&hf, progress);
        }
        Err(Error::NotFound {
            spec: spec.to_string(),
            known: known_names(),
        })
    }
}
