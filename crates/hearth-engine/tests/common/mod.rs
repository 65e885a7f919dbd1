//! Loading the real models from hearth's cache for tests, skipping loudly when absent.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use hearth_gguf::GgufFile;
use hearth_model::Transformer;
use hearth_tokenizer::Tokenizer;

/// The cached model `name` with its tokenizer, or `None` after a SKIPPED message.
pub fn load_real(name: &str) -> Option<(Arc<Transformer>, Arc<Tokenizer>)> {
    let info = hearth_hub::find_model(name).expect("known model");
    let path = hearth_hub::cache_dir().join("models").join(info.file_name);
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} absent (run `hearth pull {name}`)",
            path.display()
        );
        return None;
    }
    let file = Arc::new(GgufFile::open(&path).unwrap());
    let tok = Tokenizer::from_gguf(&file).unwrap();
    Some((
        Arc::new(Transformer::from_gguf(file).unwrap()),
        Arc::new(tok),
    ))
}
