//! The built-in lists on hand-written English and Chinese examples, and the npm
//! `naughty-words` lists (CC-BY-4.0, LDNOOBW and contributors) fetched at a pinned
//! version at test time. Skips the fetch loudly when npm or the registry is not there.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use hearth_guard::moderation::{Category, Moderator, TermList};
use sha2::{Digest, Sha256};

#[test]
fn builtin_lists_flag_clear_cases_in_each_language() {
    let m = Moderator::builtin();
    let cases: &[(&str, Category)] = &[
        (
            "I'm going to kill you when I find you",
            Category::HarassmentThreatening,
        ),
        ("you are such an idiot", Category::Harassment),
        (
            "I want to die, there is no reason to live",
            Category::SelfHarmIntent,
        ),
        (
            "what is the most painless way to die",
            Category::SelfHarmInstructions,
        ),
        ("how to make a pipe bomb at home", Category::IllicitViolent),
        (
            "the body was dismembered and disemboweled",
            Category::ViolenceGraphic,
        ),
        ("send me nudes and porn", Category::Sexual),
        ("我要杀了你", Category::HarassmentThreatening),
        ("我不想活了，活着没意思", Category::SelfHarmIntent),
        ("怎么自杀最快", Category::SelfHarmInstructions),
        ("哪里能看黄片", Category::Sexual),
        ("教我怎么做炸弹", Category::IllicitViolent),
        ("你这个傻逼", Category::Harassment),
    ];
    for (text, category) in cases {
        let v = m.moderate(text);
        assert!(
            v.categories.get(*category),
            "{text:?} not flagged {category}: {v:?}"
        );
        if let Some(parent) = category.parent() {
            assert!(
                v.categories.get(parent),
                "{text:?}: parent {parent} not flagged"
            );
        }
    }
}

#[test]
fn builtin_lists_leave_ordinary_text_alone() {
    let m = Moderator::builtin();
    for text in [
        "The quarterly report was sent to the whole team on Monday.",
        "This class assesses the skills of assistants in Scunthorpe.",
        "He killed the process and restarted the server.",
        "Our therapist said the weather would help my mood.",
        "今天天气很好，我们去公园散步吧。",
        "会议记录：下午三点讨论新产品的发布计划。",
    ] {
        let v = m.moderate(text);
        assert!(!v.flagged, "{text:?} flagged: {v:?}");
    }
}

const NAUGHTY_WORDS: &str = "naughty-words@1.2.0";
const NAUGHTY_WORDS_SHA256: &str =
    "c34b05e10a97ec7b9e0c3dd91d09888187c0f08d0812eaea79679795585b217e";

/// `npm pack` of the pinned version into a temporary directory, checked and unpacked.
fn fetch_naughty_words() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let packed = Command::new("npm")
        .args(["pack", "--silent", NAUGHTY_WORDS])
        .current_dir(dir.path())
        .output();
    let Some(packed) = packed.ok().filter(|o| o.status.success()) else {
        eprintln!("moderation_lists: SKIPPED naughty-words: `npm pack {NAUGHTY_WORDS}` failed or npm is missing");
        return None;
    };
    let name = String::from_utf8_lossy(&packed.stdout).trim().to_string();
    let tarball = dir.path().join(&name);
    let digest = format!("{:x}", Sha256::digest(std::fs::read(&tarball).unwrap()));
    assert_eq!(
        digest, NAUGHTY_WORDS_SHA256,
        "{name} is not the pinned tarball"
    );
    let ok = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .current_dir(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "unpacking {name}");
    Some(dir)
}

#[test]
fn naughty_words_lists_load_and_match() {
    let Some(dir) = fetch_naughty_words() else {
        return;
    };
    let pkg = dir.path().join("package");
    let license = std::fs::read_to_string(pkg.join("LICENSE")).unwrap();
    assert!(license.contains("Attribution 4.0 International"));
    let mut list = TermList::default();
    for (lang, at_least) in [("en", 400), ("zh", 300)] {
        let path = pkg.join(format!("{lang}.json"));
        let json = std::fs::read_to_string(&path).unwrap();
        let l = TermList::from_naughty_words_json(
            &path.display().to_string(),
            &json,
            Category::Sexual,
            0.3,
        )
        .unwrap();
        assert!(
            l.entries.len() >= at_least,
            "{lang}: {} terms",
            l.entries.len()
        );
        list.extend(l);
    }
    let m = Moderator::new(&list).unwrap();
    // One weight-0.3 term alone stays below the threshold; two distinct ones flag.
    let one = m.moderate("三级片");
    assert!(
        (one.scores.get(Category::Sexual) - 0.3).abs() < 1e-6,
        "{one:?}"
    );
    assert!(!one.flagged);
    assert!(m
        .moderate("三级片 and bdsm")
        .categories
        .get(Category::Sexual));
    assert!(
        !m.moderate("The quarterly report was sent on Monday.")
            .flagged
    );
}
