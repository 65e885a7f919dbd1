//! Random texts: tokenizing never fails, and where llama.cpp's detokenizer is lossless
//! (no space clean-up, no space prefix), decoding gives the text back. (SentencePiece
//! cannot tell a literal U+2581 from an escaped space, so the texts leave it out.)
#![allow(clippy::unwrap_used)]

mod common;

use hearth_gguf::GgufFile;
use hearth_tokenizer::{StreamDecoder, Tokenizer};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "\r\n",
    "a",
    "Hello",
    " world",
    "'s",
    "'LL",
    "123",
    "4567",
    "é",
    "ß",
    "ﬁ",
    "Ω",
    "東京",
    "한국어",
    "🦙",
    "😶‍🌫️",
    "\u{301}",
    "\u{200b}",
    "\u{3000}",
    "\u{a0}",
    "!",
    "?!",
    "...",
    "(",
    ")",
    "<",
    ">",
    "</",
    "<s>",
    "</s>",
    "<|im_end|>",
    "<end_of_turn>",
    "<start_of_turn>",
    "<|endoftext|>",
    "<unk>",
    "_",
    "$",
    "+=",
    "~",
    "\\",
    "\"",
    "\u{7f}",
    "\u{1}",
    "Ġ",
    "ĉ",
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(12);
    (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

fn run(tok: &Tokenizer, name: &str, lossless: bool) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let text = random_text(&mut rng);
        for parse_special in [false, true] {
            let ids = tok.encode(&text, false, parse_special).expect("encode");
            assert!(ids.iter().all(|&i| (i as usize) < tok.vocab_size()));
            let decoded = tok.decode(&ids, true);
            if lossless {
                assert_eq!(decoded, text, "{name}: {text:?} -> {ids:?}");
            }
            let mut s = StreamDecoder::with_special(tok, true);
            let mut streamed: String = ids.iter().map(|&i| s.push(i)).collect();
            streamed.push_str(&s.finish());
            if lossless {
                assert_eq!(streamed, text, "{name} (streamed): {text:?}");
            }
        }
    }
}

#[test]
fn real_models_round_trip() {
    for (file, pull) in [
        ("gemma-3-270m-q4_k_m.gguf", "gemma3-270m"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m"),
    ] {
        let Some(path) = common::model(file, pull) else {
            continue;
        };
        let tok = Tokenizer::from_gguf(&GgufFile::open(&path).expect("open")).expect("tokenizer");
        run(&tok, pull, true);
    }
}

#[test]
fn llama_vocabularies_never_fail() {
    let dir = common::cache().join("llama-vocab");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: {} not found", dir.display());
        return;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "gguf") {
            continue;
        }
        let Ok(tok) = Tokenizer::from_gguf(&GgufFile::open(&path).expect("open")) else {
            continue;
        };
        run(&tok, &path.display().to_string(), false);
        n += 1;
    }
    eprintln!("{n} vocabularies exercised");
}
