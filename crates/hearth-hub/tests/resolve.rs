//! `resolve`: local paths, unknown names, missing paths and repo ids, without network.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::fs;

use hearth_hub::{Cache, Error, NoProgress};

#[test]
fn local_paths_are_returned_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path().join("cache")).with_hf_offline(true);
    let file = dir.path().join("m.gguf");
    fs::write(&file, b"GGUF").unwrap();
    let spec = file.to_str().unwrap();
    assert_eq!(cache.resolve(spec, &NoProgress).unwrap(), file);
    let sub = dir.path().join("some-model");
    fs::create_dir(&sub).unwrap();
    assert_eq!(
        cache.resolve(sub.to_str().unwrap(), &NoProgress).unwrap(),
        sub
    );
    assert!(
        !dir.path().join("cache").exists(),
        "resolve of a local path touched the cache"
    );
}

#[test]
fn unknown_names_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path()).with_hf_offline(true);
    for spec in [
        "gemma-2b",
        "/no/such/model.gguf",
        "./missing.gguf",
        "models/missing.gguf",
        "",
    ] {
        let err = cache.resolve(spec, &NoProgress).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::NotFound { .. }), "{spec}: {msg}");
        assert!(msg.contains("no such file or directory"), "{msg}");
        assert!(msg.contains("gemma3-270m, smollm2-135m"), "{msg}");
    }
}

#[test]
fn repo_ids_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::at(dir.path()).with_hf_offline(true);
    let err = cache
        .resolve("unsloth/gemma-3-270m-it-GGUF:Q8_0", &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::HubOffline { .. }), "{err}");
    let cached = cache
        .hf_dir()
        .join("unsloth/gemma-3-270m-it-GGUF/gemma-3-270m-it-Q8_0.gguf");
    fs::create_dir_all(cached.parent().unwrap()).unwrap();
    fs::write(&cached, b"GGUF").unwrap();
    assert_eq!(
        cache
            .resolve("unsloth/gemma-3-270m-it-GGUF:Q8_0", &NoProgress)
            .unwrap(),
        cached
    );
    assert_eq!(
        cache
            .resolve("unsloth/gemma-3-270m-it-GGUF", &NoProgress)
            .unwrap(),
        cached
    );
}
