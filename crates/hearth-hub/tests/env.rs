//! The free functions read the environment. This is the only test in this binary, so
//! changing the environment here races with nothing.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use hearth_hub::{cache_dir, llama_vocab_dir, resolve, Error, NoProgress};

#[test]
fn environment_chooses_cache_and_offline_mode() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("HEARTH_CACHE", dir.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");
    assert_eq!(cache_dir(), dir.path());
    assert_eq!(llama_vocab_dir(), dir.path().join("llama-vocab"));
    let err = resolve("owner/name", &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::HubOffline { .. }), "{msg}");
    assert!(
        msg.contains(&dir.path().join("hf/owner/name").display().to_string()),
        "{msg}"
    );
}
