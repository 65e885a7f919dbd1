//! Pre-tokenization of byte-level BPE: splitting text into words before merging, per
//! `tokenizer.ggml.pre`, as llama.cpp's `llm_tokenizer_bpe` and `unicode_regex_split` do.
//!
//! The common expressions (GPT-2, Llama 3, Qwen2, Qwen3.5, newline runs) have hand-written
//! splitters that reproduce llama.cpp's own hand-written ones, quirks included. Any other
//! expression runs through a regex engine the way llama.cpp runs `std::regex`: when it
//! uses `\p{..}` classes, on a "collapsed" text where every non-ASCII code point stands
//! for its category, otherwise on the code points with non-ASCII whitespace made `\v`.

use crate::pretype::{PreConfig, Rule};
use crate::unicode::{self, Category, Flags};
use crate::{Error, Result};

/// Marks a position outside the current fragment (llama.cpp's `OUT_OF_RANGE`).
const OUT: u32 = u32::MAX;

/// One fragment of code points being split, with llama.cpp's bounds-checked accessors.
struct Frag<'a> {
    cpts: &'a [u32],
    flags: &'a [Flags],
    ini: usize,
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

impl Frag<'_> {
    fn cpt(&self, pos: usize) -> u32 {
        if self.ini <= pos && pos < self.end {
            self.cpts[pos]
        } else {
            OUT
        }
    }
    fn fl(&self, pos: usize) -> Flags {
        if self.ini <= pos && pos < self.end {
            self.flags[pos]
        } else {
            Flags::OUT
        }
    }
    /// Ends the current word at `end`; returns its length.
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
    /// `'s|'t|'re|'ve|'m|'ll|'d` at `pos` (case-insensitively if `fold`): the match length.
    fn contraction(&self, pos: usize, fold: bool) -> usize {
        if self.cpt(pos) != '\'' as u32 || pos + 1 >= self.end {
            return 0;
        }
        let low = |c: u32| if fold { unicode::to_lower_ascii(c) } else { c };
        let c1 = low(self.cpt(pos + 1));
        if [b's', b't', b'm', b'd'].iter().any(|&b| c1 == b as u32) {
            return 2;
        }
        if pos + 2 < self.end {
            let c2 = low(self.cpt(pos + 2));
            let pair = |a: u8, b: u8| c1 == a as u32 && c2 == b as u32;
            if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
                return 3;
            }
        }
        0
    }
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn split_gpt2(f: &mut Frag<'_>) {
    let mut pos = f.ini;
    while pos < f.end {
        let cpt = f.cpt(pos);
        let flags = f.fl(pos);
        let n = f.contraction(pos, false);
        if n > 0 {
            pos += f.add(pos + n);
            continue;
        }
        let space = cpt == ' ' as u32;
        let mut flags2 = if space { f.fl(pos + 1) } else { flags };
        if flags2.letter() || flags2.number() {
            let letter = flags2.letter();
            pos += space as usize;
            while (letter && flags2.letter()) || (!letter && flags2.number()) {
                pos += 1;
                flags2 = f.fl(pos);
            }
            f.add(pos);
            continue;
        }
        let other = |fl: Flags| !(fl.ws || fl.letter() || fl.number()) && fl.any();
        if other(flags2) {
            pos += space as usize;
            while other(flags2) {
                pos += 1;
                flags2 = f.fl(pos);
            }
            f.add(pos);
            continue;
        }
        let mut nws = 0;
        while f.fl(pos + nws).ws {
            nws += 1;
        }
        if nws > 1 && f.cpt(pos + nws) != OUT {
            pos += nws - 1;
            f.add(pos);
            continue;
        }
        if nws > 0 {
            pos += nws;
            f.add(pos);
            continue;
        }
        pos += 1;
        f.add(pos);
    }
}

/// Llama 3 / Qwen2 / Qwen3.5:
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// with `digits` for the `{1,3}` and `\p{M}` counted with letters when `marks`.
fn split_llama3(f: &mut Frag<'_>, digits: usize, marks: bool) {
    let is_l = |fl: Flags| fl.letter() || (marks && fl.mark());
    let is_nl = |c: u32| c == '\r' as u32 || c == '\n' as u32;
    let mut pos = f.ini;
    while pos < f.end {
        let cpt = f.cpt(pos);
        let flags = f.fl(pos);
        let n = f.contraction(pos, true);
        if n > 0 {
            pos += f.add(pos + n);
            continue;
        }
        if !(is_nl(cpt) || flags.number()) && (is_l(flags) || is_l(f.fl(pos + 1))) {
            pos += 1;
            while is_l(f.fl(pos)) {
                pos += 1;
            }
            f.add(pos);
            continue;
        }
        if flags.number() {
            let mut ini = pos;
            while f.fl(pos).number() {
                pos += 1;
                if pos - ini >= digits {
                    f.add(pos);
                    ini = pos;
                }
            }
            f.add(pos);
            continue;
        }
        let other = |fl: Flags| !(fl.ws || is_l(fl) || fl.number());
        let space = cpt == ' ' as u32;
        let mut flags2 = if space { f.fl(pos + 1) } else { flags };
        if other(flags2) && flags.any() {
            pos += space as usize;
            while other(flags2) && flags2.any() {
                pos += 1;
                flags2 = f.fl(pos);
            }
            while is_nl(f.cpt(pos)) {
                pos += 1;
            }
            f.add(pos);
            continue;
        }
        let mut nws = 0;
        let mut last_nl_end = 0;
        while f.fl(pos + nws).ws {
            if is_nl(f.cpt(pos + nws)) {
                last_nl_end = pos + nws + 1;
            }
            nws += 1;
        }
        if last_nl_end > 0 {
            pos = last_nl_end;
            f.add(pos);
            continue;
        }
        if nws > 1 && f.cpt(pos + nws) != OUT {
            pos += nws - 1;
            f.add(pos);
            continue;
        }
        if nws > 0 {
            pos += nws;
            f.add(pos);
            continue;
        }
        pos += 1;
        f.add(pos);
    }
}

/// `[^\n]+|[\n]+`.
fn split_newlines(f: &mut Frag<'_>) {
    let mut pos = f.ini;
    while pos < f.end {
        let nl = f.cpts[pos] == '\n' as u32;
        while pos < f.end && (f.cpts[pos] == '\n' as u32) == nl {
            pos += 1;
        }
        f.add(pos);
    }
}

/// One compiled step.
enum Step {
    Custom(Rule),
    Regex {
        source: &'static str,
        re: fancy_regex::Regex,
        collapsed: bool,
    },
}

/// A compiled pre-tokenizer: the steps of one [`PreConfig`].
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
}

impl std::fmt::Debug for PreTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreTokenizer")
            .field("steps", &self.steps.len())
            .finish()
    }
}

/// The stand-in code point of a non-ASCII character of category `cat` in collapsed text.
fn collapsed_char(cpt: u32, fl: Flags) -> char {
    if cpt < 128 {
        return char::from_u32(cpt).unwrap_or('\0');
    }
    if fl.ws {
        return '\x0B';
    }
    match fl.cat {
        Category::Number => '\u{E0D1}',
        Category::Letter => '\u{E0D2}',
        Category::Punctuation => '\u{E0D3}',
        Category::Mark => '\u{E0D4}',
        Category::Symbol => '\u{E0D5}',
        _ => '\u{E0D0}',
    }
}

const UCATS: [(&str, &str); 10] = [
    ("\\p{N}", "\\x{E0D1}0-9"),
    ("\\p{L}", "\\x{E0D2}A-Za-z"),
    ("\\p{P}", "\\x{E0D3}!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"),
    ("\\p{M}", "\\x{E0D4}"),
    ("\\p{S}", "\\x{E0D5}\\$\\+<->\\^`\\|~"),
    ("\\p{Lu}", "\\x{E0D2}A-Za-z"),
    ("\\p{Ll}", "\\x{E0D2}A-Za-z"),
    ("\\p{Lt}", "\\x{E0D2}A-Za-z"),
    ("\\p{Lm}", "\\x{E0D2}A-Za-z"),
    ("\\p{Lo}", "\\x{E0D2}A-Za-z"),
];

/// llama.cpp's rewrite of an expression with `\p{..}` classes for collapsed text, or `None`
/// when it has none.
fn collapse_regex(expr: &str) -> Result<Option<String>> {
    if !UCATS.iter().any(|(pat, _)| expr.contains(pat)) {
        return Ok(None);
    }
    if !expr.is_ascii() {
        return Err(Error::Regex {
            regex: expr.to_string(),
            what: "unicode categories together with non-ASCII characters are not supported".into(),
        });
    }
    let b = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() * 2);
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' && (i == 0 || b[i - 1] != b'\\') {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && b[i] == b']' && b[i - 1] != b'\\' {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if let Some((pat, class)) = UCATS.iter().find(|(pat, _)| expr[i..].starts_with(pat)) {
            if !inside {
                out.push('[');
            }
            out.push_str(class);
            if !inside {
                out.push(']');
            }
            i += pat.len();
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    Ok(Some(out))
}

impl PreTokenizer {
    /// Compiles the steps of `cfg`.
    pub fn new(cfg: &PreConfig) -> Result<Self> {
        let mut steps = Vec::new();
        for rule in cfg.rules {
            steps.push(match *rule {
                Rule::Regex(source) => {
                    let collapsed = collapse_regex(source)?;
                    let pattern = collapsed.as_deref().unwrap_or(source);
                    let re = fancy_regex::Regex::new(pattern).map_err(|e| Error::Regex {
                        regex: source.to_string(),
                        what: e.to_string(),
                    })?;
                    Step::Regex {
                        source,
                        re,
                        collapsed: collapsed.is_some(),
                    }
                }
                other => Step::Custom(other),
            });
        }
        Ok(Self { steps })
    }

    /// Splits `text` into words, in order, covering all of it.
    pub fn split<'t>(&self, text: &'t str) -> Result<Vec<&'t str>> {
        let cpts: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let n = cpts.len();
        let flags: Vec<Flags> = cpts.iter().map(|&c| unicode::flags(c)).collect();
        let mut offsets = vec![n];
        for step in &self.steps {
            let mut out = Vec::with_capacity(offsets.len() * 2);
            match step {
                Step::Custom(rule) => {
                    let mut start = 0;
                    for &len in &offsets {
                        let mut f = Frag {
                            cpts: &cpts,
                            flags: &flags,
                            ini: start,
                            end: start + len,
                            prev_end: start,
                            out: &mut out,
                        };
                        match *rule {
                            Rule::Gpt2 => split_gpt2(&mut f),
                            Rule::Llama3 { digits, marks } => split_llama3(&mut f, digits, marks),
                            Rule::Newlines => split_newlines(&mut f),
                            Rule::Regex(_) => {}
                        }
                        start += len;
                    }
                }
                Step::Regex {
                    source,
                    re,
                    collapsed,
                } => {
                    let hay: String = if *collapsed {
                        cpts.iter()
                            .zip(&flags)
                            .map(|(&c, &fl)| collapsed_char(c, fl))
                            .collect()
                    } else {
                        cpts.iter()
                            .zip(&flags)
                            .map(|(&c, &fl)| {
                                if c > 0x7F && fl.ws {
                                    '\x0B'
                                } else {
                                    char::from_u32(c).unwrap_or('\u{FFFD}')
                                }
                            })
                            .collect()
                    };
                    regex_split(&hay, re, source, &offsets, &mut out)?;
                }
            }
            offsets = out;
        }
        let mut bpos: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        bpos.push(text.len());
        let mut words = Vec::with_capacity(offsets.len());
        let mut start = 0;
        for len in offsets {
            words.push(&text[bpos[start]..bpos[start + len]]);
            start += len;
        }
        Ok(words)
    }
}

/// llama.cpp's `unicode_regex_split_stl`: in each fragment, matches and the gaps between
/// them become words. `hay` has one char per code point.
fn regex_split(
    hay: &str,
    re: &fancy_regex::Regex,
    source: &str,
    offsets: &[usize],
    out: &mut Vec<usize>,
) -> Result<()> {
    let mut bpos: Vec<usize> = hay.char_indices().map(|(i, _)| i).collect();
    bpos.push(hay.len());
    let to_cpt = |b: usize| bpos.partition_point(|&x| x < b);
    let mut start = 0;
    for &len in offsets {
        let (b0, b1) = (bpos[start], bpos[start + len]);
        let frag = &hay[b0..b1];
        let mut done = start;
        for m in re.find_iter(frag) {
            let m = m.map_err(|e| Error::Regex {
                regex: source.to_string(),
                what: e.to_string(),
            })?;
            let (ms, me) = (to_cpt(b0 + m.start()), to_cpt(b0 + m.end()));
            if ms > done {
                out.push(ms - done);
            }
            out.push(me - ms);
            done = me;
        }
        if done < start + len {
            out.push(start + len - done);
        }
        start += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pretype::pre_config;

    fn words(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::new(&pre_config(pre).unwrap()).unwrap();
        p.split(text)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn gpt2_words() {
        assert_eq!(
            words("gpt-2", "Hello world's  end\n"),
            ["Hello", " world", "'s", " ", " end", "\n"]
        );
    }

    #[test]
    fn llama3_words() {
        assert_eq!(
            words("llama-bpe", "I'M 12345 ok!!\n\n x"),
            ["I", "'M", " ", "123", "45", " ok", "!!\n\n", " x"]
        );
    }

    #[test]
    fn starcoder_digits() {
        assert_eq!(words("starcoder", "ab 123"), ["ab", " ", "1", "2", "3"]);
    }

    /// Every pre-tokenizer we accept compiles and splits a mixed text into words that
    /// cover it exactly.
    #[test]
    fn every_known_pre_tokenizer_works() {
        const ALL: &[&str] = &[
            "",
            "default",
            "minicpm5",
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "jina-v5-nano",
            "deepseek-llm",
            "deepseek-coder",
            "deepseek-v3",
            "hunyuan-dense",
            "hy_v4",
            "joyai-llm",
            "falcon",
            "mpt",
            "olmo",
            "jais",
            "exaone4",
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "modern-bert",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
            "trillion",
            "granite-docling",
            "starcoder",
            "refact",
            "codeshell",
            "exaone",
            "minerva-7b",
            "mellum2",
            "command-r",
            "smollm",
            "gemma4",
            "granite-embed-multi-311m",
            "sarvam-moe",
            "stablelm2",
            "qwen2",
            "deepseek-r1-qwen",
            "kormo",
            "f2llmv2",
            "hunyuan",
            "solar-open",
            "grok-2",
            "megrez",
            "laguna",
            "qwen35",
            "dbrx",
            "smaug-bpe",
            "chatglm-bpe",
            "glm4",
            "glm5",
            "poro-chat",
            "bloom",
            "gpt3-finnish",
            "viking",
            "ufakzeka",
            "bailingmoe",
            "bailingmoe2",
            "llada-moe",
            "seed-coder",
        ];
        let text =
            "Hello, World! It's 2025: ½ price — naïve café 東京 \t\r\n  x\u{3000}y 123456 🦙";
        for name in ALL {
            let p = PreTokenizer::new(&pre_config(name).unwrap()).unwrap();
            let w = p.split(text).unwrap();
            assert_eq!(w.concat(), text, "{name}");
            assert!(w.iter().all(|w| !w.is_empty()), "{name}");
        }
        assert!(pre_config("nonsense").is_err());
    }

    #[test]
    fn collapse() {
        assert_eq!(collapse_regex("\\p{N}").unwrap().unwrap(), "[\\x{E0D1}0-9]");
        assert_eq!(collapse_regex("[0-9]").unwrap(), None);
    }
}
