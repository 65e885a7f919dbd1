#![allow(clippy::unwrap_used)]
//! The CCNet-style n-gram model: Kneser-Ney distributions sum to one, ARPA and lm.bin give
//! identical scores, a hand-written ARPA scores as computed by hand, fluent English beats
//! shuffled English, bad files fail with a clear message, and (when the `kenlm` Python
//! module is available) our ARPA scores match KenLM's.

use std::path::Path;

use hearth_data::{
    ccnet_normalize, load_lm, parse_arpa, word_tokens, write_arpa, BackoffModel, KneserNeyTrainer,
    NgramLm, EOS,
};

fn english() -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/english.txt");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn train(lines: &[String], order: usize, prune: u32) -> BackoffModel {
    let mut t = KneserNeyTrainer::new(order).unwrap();
    for l in lines {
        t.add_line(l).unwrap();
    }
    t.build(prune).unwrap()
}

fn lm(m: &BackoffModel) -> NgramLm {
    NgramLm::from_model(m, Path::new("test")).unwrap()
}

/// Σ over every word but `<s>` of p(w | context).
fn total_prob(lm: &NgramLm, context: &[&str]) -> f64 {
    let ctx: Vec<u32> = context.iter().map(|w| lm.id(w)).collect();
    lm.vocab()
        .iter()
        .filter(|w| w.as_str() != "<s>")
        .map(|w| 10f64.powf(f64::from(lm.log10_prob(&ctx, lm.id(w)))))
        .sum()
}

#[test]
fn kneser_ney_distributions_sum_to_one() {
    let lines = english();
    for (order, prune) in [(3, 0), (5, 0), (4, 1)] {
        let m = lm(&train(&lines, order, prune));
        for ctx in [
            &[][..],
            &["<s>"][..],
            &["the"][..],
            &["of", "the"][..],
            &["<s>", "the", "town"][..],
            &["in", "the", "morning"][..],
            &["river", "zebra"][..],
            &["the", "people", "of", "the"][..],
        ] {
            let s = total_prob(&m, ctx);
            assert!(
                (s - 1.0).abs() < 1e-4,
                "order {order} prune {prune} {ctx:?}: {s}"
            );
        }
    }
}

#[test]
fn arpa_and_binary_give_identical_scores() {
    let lines = english();
    let model = train(&lines, 4, 0);
    let direct = lm(&model);
    let tmp = tempfile::tempdir().unwrap();
    let arpa = tmp.path().join("m.arpa");
    std::fs::write(&arpa, write_arpa(&model)).unwrap();
    let bin = tmp.path().join("m.bin");
    direct.save(&bin).unwrap();
    let (from_arpa, from_bin) = (load_lm(&arpa).unwrap(), load_lm(&bin).unwrap());
    assert_eq!(parse_arpa(&write_arpa(&model), &arpa).unwrap(), model);
    for text in lines.iter().map(String::as_str).chain([
        "Unknown words like zyzzyva appear here.\nAnd a second line.",
        "",
        "The town, the river; the bridge!",
    ]) {
        let a = direct.document_log10(text);
        assert_eq!(from_arpa.document_log10(text), a, "{text}");
        assert_eq!(from_bin.document_log10(text), a, "{text}");
    }
}

/// A bigram model small enough to score by hand, with backoff.
#[test]
fn hand_written_arpa_scores_as_computed_by_hand() {
    let arpa = "\\data\\\nngram 1=5\nngram 2=3\n\n\\1-grams:\n\
        -1.0\t<unk>\n-99\t<s>\t-0.5\n-0.7\t</s>\n-0.6\ta\t-0.2\n-0.9\tb\t-0.3\n\n\
        \\2-grams:\n-0.1\t<s> a\n-0.25\ta b\n-0.4\tb </s>\n\n\\end\\\n";
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("tiny.arpa");
    std::fs::write(&p, arpa).unwrap();
    let m = load_lm(&p).unwrap();
    // "a b": p(a|<s>) = -0.1, p(b|a) = -0.25, p(</s>|b) = -0.4.
    let s = m.sentence_log10(&["a", "b"]);
    assert!((s - (-0.75)).abs() < 1e-6, "{s}");
    // "b a": p(b|<s>) backs off: bo(<s>) + p(b) = -0.5 - 0.9; p(a|b) = bo(b) + p(a) =
    // -0.3 - 0.6; p(</s>|a) = bo(a) + p(</s>) = -0.2 - 0.7.
    let s = m.sentence_log10(&["b", "a"]);
    assert!((s - (-1.4 - 0.9 - 0.9)).abs() < 1e-6, "{s}");
    // An unknown word: p(<unk>|<s>) = bo(<s>) + p(<unk>); p(</s>|<unk>) = p(</s>).
    let s = m.sentence_log10(&["zzz"]);
    assert!((s - (-0.5 - 1.0 - 0.7)).abs() < 1e-6, "{s}");
    // Perplexity as CCNet: 10^(-log10 / tokens), tokens = words + </s>.
    let ppl = m.perplexity("A B");
    assert!((ppl - 10f64.powf(0.75 / 3.0)).abs() < 1e-6, "{ppl}");
    assert_eq!(m.id(EOS), 2);
}

fn shuffle(text: &str, seed: &mut u64) -> String {
    let mut w: Vec<&str> = text.split_whitespace().collect();
    for i in (1..w.len()).rev() {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        w.swap(i, (*seed >> 33) as usize % (i + 1));
    }
    w.join(" ")
}

#[test]
fn fluent_english_scores_lower_than_shuffled_on_held_out_text() {
    let lines = english();
    let (train_lines, held_out) = lines.split_at(45);
    for prune in [0, 1] {
        let m = lm(&train(train_lines, 5, prune));
        let mut seed = 11u64;
        let mut wins = 0;
        for l in held_out {
            let (fluent, shuffled) = (m.perplexity(l), m.perplexity(&shuffle(l, &mut seed)));
            wins += usize::from(fluent < shuffled);
        }
        assert_eq!(wins, held_out.len(), "prune {prune}");
        let doc = held_out.join("\n");
        let sdoc: Vec<String> = held_out.iter().map(|l| shuffle(l, &mut seed)).collect();
        let (f, s) = (m.perplexity(&doc), m.perplexity(&sdoc.join("\n")));
        assert!(f * 1.5 < s, "fluent {f} vs shuffled {s}");
    }
}

#[test]
fn tokens_follow_ccnet_normalisation() {
    let n = ccnet_normalize("Café — 1984, “Big” Brother…");
    assert_eq!(n, "cafe - 0000, \"big\" brother...");
    assert_eq!(
        word_tokens(&n),
        ["cafe", "-", "0000", ",", "\"", "big", "\"", "brother", ".", ".", "."]
    );
}

#[test]
fn bad_model_files_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let good = lm(&train(&english(), 3, 0)).to_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", b"HEARTHXX rest".to_vec(), "no `\\data\\` header"),
        (
            "version",
            {
                let mut b = good.clone();
                b[8] = 9;
                b
            },
            "version 9",
        ),
        ("truncated", good[..good.len() - 20].to_vec(), "truncated"),
        ("trailer", [&good[..], b"x"].concat(), "extra bytes"),
        (
            "arpa",
            b"\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n\\end\\\n".to_vec(),
            "line 5: expected 1 words",
        ),
        (
            "arpa2",
            b"\\data\\\nngram 1=1\nngram 2=1\n\n\\1-grams:\n-1\ta\n\\2-grams:\n-1\ta b\n\\end\\\n"
                .to_vec(),
            "line 8: word `b` is not a unigram",
        ),
        (
            "arpa3",
            b"\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n\\end\\\n".to_vec(),
            "header says 2 1-grams, found 1",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = load_lm(&p).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(name), "{name}: {e}");
    }
}

/// Our ARPA reader against KenLM's on the same file, when the `kenlm` Python module is
/// installed (`HEARTH_KENLM_PYTHON` names a python that has it); skipped loudly otherwise.
#[test]
fn arpa_scores_match_kenlm_when_available() {
    let Ok(python) = std::env::var("HEARTH_KENLM_PYTHON") else {
        eprintln!("SKIPPED: set HEARTH_KENLM_PYTHON to a python with the kenlm module");
        return;
    };
    let lines = english();
    let model = train(&lines[..45], 4, 0);
    let tmp = tempfile::tempdir().unwrap();
    let arpa = tmp.path().join("m.arpa");
    std::fs::write(&arpa, write_arpa(&model)).unwrap();
    let ours = load_lm(&arpa).unwrap();
    let sentences: Vec<String> = lines[45..]
        .iter()
        .map(|l| word_tokens(&ccnet_normalize(l)).join(" "))
        .collect();
    let script = "import kenlm,sys\nm=kenlm.Model(sys.argv[1])\n\
        for l in sys.stdin.read().split('\\n'):\n    print(m.score(l, bos=True, eos=True))\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", script, arpa.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sentences.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let theirs: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), sentences.len());
    for (s, k) in sentences.iter().zip(theirs) {
        let words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
        let o = ours.sentence_log10(&words);
        assert!((o - k).abs() < 1e-4, "{s}: ours {o} kenlm {k}");
    }
}
