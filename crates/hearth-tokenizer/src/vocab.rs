//! GGUF vocabulary metadata -> token tables, special tokens and flags, with llama.cpp's
//! defaults and fix-ups (`llama_vocab::impl::load`).

use std::collections::HashMap;

use hearth_gguf::{GgufFile, Value};

use crate::pretype::{pre_config, PreConfig};
use crate::{Error, Result, TokenizerKind};

/// Token attribute bits (llama.cpp's `llama_token_attr`).
pub(crate) mod attr {
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;
}

/// Everything read from the metadata, ready for tokenizing.
pub(crate) struct Vocab {
    pub kind: TokenizerKind,
    pub texts: Vec<String>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u16>,
    pub token_to_id: HashMap<String, u32>,
    /// BPE merges: part string -> part number, and (left part, right part) -> rank.
    pub merge_parts: HashMap<String, u32>,
    pub merge_ranks: HashMap<(u32, u32), u32>,
    pub pre: Option<PreConfig>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    pub escape_whitespaces: bool,
    /// Control, user-defined and unknown tokens, longest text first.
    pub special: Vec<u32>,
    /// End-of-generation tokens, ascending.
    pub eog: Vec<u32>,
    pub chat_template: Option<String>,
}

fn bad(key: &str, what: impl Into<String>) -> Error {
    Error::BadMetadata {
        key: key.to_string(),
        what: what.into(),
    }
}

/// A numeric array as f32 / i32 (`None` when absent).
fn num_array<T>(
    f: &GgufFile,
    key: &str,
    n: usize,
    conv: impl Fn(&Value) -> Option<T>,
) -> Result<Option<Vec<T>>> {
    if f.get(key).is_none() {
        return Ok(None);
    }
    let items = f.array(key)?;
    if items.len() < n {
        return Err(bad(key, format!("{} entries for {n} tokens", items.len())));
    }
    items[..n]
        .iter()
        .map(|v| conv(v).ok_or_else(|| bad(key, format!("unexpected element {v:?}"))))
        .collect::<Result<Vec<T>>>()
        .map(Some)
}

/// A token id from the metadata; a value that is not a non-negative integer counts as
/// absent (the default stays), like an out-of-range one.
fn token_id_opt(f: &GgufFile, key: &str) -> Option<u64> {
    f.get(key).and_then(Value::as_u64)
}

impl Vocab {
    pub fn load(f: &GgufFile) -> Result<Self> {
        let model = f.str("tokenizer.ggml.model")?;
        let mut pre_name = f.str_opt("tokenizer.ggml.pre")?.unwrap_or("").to_string();
        let (kind, mut bos, mut eos): (_, Option<u64>, Option<u64>) = match model {
            "llama" => (TokenizerKind::Spm, Some(1), Some(2)),
            "gpt2" => (TokenizerKind::Bpe, Some(11), Some(11)),
            "gemma4" => {
                pre_name = "gemma4".into();
                (TokenizerKind::Bpe, None, None)
            }
            other => return Err(Error::UnsupportedModel(other.to_string())),
        };
        let mut pre = None;
        let (mut add_bos, mut add_eos, mut add_space_prefix, clean_spaces, escape_whitespaces);
        match kind {
            TokenizerKind::Bpe => {
                let c = pre_config(&pre_name)?;
                add_bos = c.add_bos;
                add_eos = false;
                add_space_prefix = false;
                clean_spaces = c.clean_spaces;
                escape_whitespaces = c.escape_whitespaces;
                if c.no_bos {
                    bos = None;
                }
                pre = Some(c);
            }
            TokenizerKind::Spm => {
                add_bos = true;
                add_eos = false;
                add_space_prefix = true;
                clean_spaces = false;
                escape_whitespaces = true;
            }
        }
        if let Some(v) = f.bool_opt("tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }

        let words = f.str_array("tokenizer.ggml.tokens")?;
        let n = words.len();
        let scores = num_array(f, "tokenizer.ggml.scores", n, |v| {
            v.as_f64().map(|x| x as f32)
        })?
        .unwrap_or_else(|| vec![0.0; n]);
        let types = num_array(f, "tokenizer.ggml.token_type", n, |v| v.as_i64())?;
        let mut texts = Vec::with_capacity(n);
        let mut attrs = Vec::with_capacity(n);
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, w) in words.iter().enumerate() {
            let text = if w.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                (*w).to_string()
            };
            token_to_id.insert(text.clone(), i as u32);
            texts.push(text);
            attrs.push(match types.as_ref().map(|t| t[i]) {
                None | Some(1) => attr::NORMAL,
                Some(2) => attr::UNKNOWN,
                Some(3) => attr::CONTROL,
                Some(4) => attr::USER_DEFINED,
                Some(5) => attr::UNUSED,
                Some(6) => attr::BYTE,
                Some(_) => 0,
            });
        }

        let mut merge_parts = HashMap::new();
        let mut merge_ranks = HashMap::new();
        if kind == TokenizerKind::Bpe {
            let merges = f.str_array("tokenizer.ggml.merges")?;
            for (rank, m) in merges.iter().enumerate() {
                // llama.cpp splits at the first space after the first byte.
                let (a, b) = match m.bytes().skip(1).position(|c| c == b' ') {
                    Some(p) => (&m[..p + 1], &m[p + 2..]),
                    None => ("", ""),
                };
                let mut part = |s: &str| {
                    let next = merge_parts.len() as u32;
                    *merge_parts.entry(s.to_string()).or_insert(next)
                };
                let key = (part(a), part(b));
                merge_ranks.entry(key).or_insert(rank as u32);
            }
        }

        // Special token ids: out-of-range defaults are dropped, out-of-range metadata ignored.
        let n64 = n as u64;
        let mut ids: [Option<u64>; 8] = [bos, eos, None, None, None, None, None, None];
        const KEYS: [&str; 8] = [
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.eot_token_id",
            "tokenizer.ggml.eom_token_id",
            "tokenizer.ggml.fim_pad_token_id",
            "tokenizer.ggml.fim_rep_token_id",
            "tokenizer.ggml.fim_sep_token_id",
            "tokenizer.ggml.unknown_token_id",
        ];
        for (id, key) in ids.iter_mut().zip(KEYS) {
            if id.is_some_and(|i| i >= n64) {
                *id = None;
            }
            if let Some(v) = token_id_opt(f, key) {
                if v < n64 {
                    *id = Some(v);
                }
            }
        }
        let to_u32 = |o: Option<u64>| o.map(|v| v as u32);
        let [b, e, mut eot, mut eom, mut fim_pad, mut fim_rep, mut fim_sep, _unk] = ids.map(to_u32);
        bos = b.map(u64::from);
        eos = e.map(u64::from);
        if let Some(v) = f.bool_opt("tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = f.bool_opt("tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }
        if pre_name == "gemma4" || pre_name == "granite-embed-multi-311m" {
            add_bos = true;
        }

        // Auto-detection by text, as llama.cpp does (it walks a hash map; we walk ids upward).
        let mut fim = [None::<u32>; 3];
        for id in 0..n as u32 {
            let t = texts[id as usize].as_str();
            let a = &mut attrs[id as usize];
            let mut hit = |slot: &mut Option<u32>, names: &[&str]| {
                if slot.is_none() && names.contains(&t) {
                    *slot = Some(id);
                    *a |= attr::CONTROL;
                }
            };
            hit(&mut eot, EOT_NAMES);
            hit(&mut eom, &["<|eom_id|>"]);
            hit(&mut fim[0], FIM_PRE);
            hit(&mut fim[1], FIM_SUF);
            hit(&mut fim[2], FIM_MID);
            hit(&mut fim_pad, FIM_PAD);
            hit(&mut fim_rep, FIM_REP);
            hit(&mut fim_sep, &["<|file_sep|>"]);
        }
        for (t, a) in texts.iter().zip(attrs.iter_mut()) {
            if *a & attr::CONTROL != 0 && t.contains("unused") {
                *a |= attr::UNUSED;
            }
        }
        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for (id, t) in texts.iter().enumerate() {
            if EOG_NAMES.contains(&t.as_str()) {
                eog.push(id as u32);
                attrs[id] |= attr::CONTROL;
            }
            if ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"].contains(&t.as_str()) {
                attrs[id] = attr::USER_DEFINED;
            }
        }
        eog.extend([to_u32(eos), eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let has =
            |eog: &[u32], name: &str| eog.iter().find(|&&i| texts[i as usize] == name).copied();
        if let Some(end) = has(&eog, "<|end|>") {
            let ret = has(&eog, "<|return|>").is_some();
            let call = has(&eog, "<|call|>").or(has(&eog, "<|calls|>")).is_some();
            let flush = has(&eog, "<|flush|>").is_some();
            if call && (ret || flush) {
                eog.retain(|&i| i != end);
                attrs[end as usize] = attr::USER_DEFINED;
            }
        }
        if let Some(s) = has(&eog, "</s>") {
            if has(&eog, "<|tool_response>").is_some() || has(&eog, "<|plamo:eos|>").is_some() {
                eog.retain(|&i| i != s);
                attrs[s as usize] = attr::NORMAL;
            }
        }

        let mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        let mut special: Vec<u32> = (0..n as u32)
            .filter(|&i| attrs[i as usize] & mask != 0)
            .collect();
        special.sort_by(|&a, &b| {
            texts[b as usize]
                .len()
                .cmp(&texts[a as usize].len())
                .then(a.cmp(&b))
        });

        // Per-model attributes llama.cpp sets by name.
        let name = f.str_opt("general.name")?.unwrap_or("").to_lowercase();
        let arch = f.str_opt("general.architecture")?.unwrap_or("");
        let mut set = |t: &str, bit: u16, on: bool| {
            if let Some(&id) = token_to_id.get(t) {
                let a = &mut attrs[id as usize];
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"]
            .iter()
            .any(|s| pre_name.contains(s))
            || ["nomic-bert-moe", "jina-bert-v3"]
                .iter()
                .any(|s| arch.contains(s))
        {
            set("<mask>", attr::LSTRIP, true);
        } else if name.contains("phi-3") || name.contains("phi3") {
            for &id in &special {
                attrs[id as usize] |= attr::RSTRIP;
            }
            let mut set = |t: &str, on: bool| {
                if let Some(&id) = token_to_id.get(t) {
                    let a = &mut attrs[id as usize];
                    *a = if on {
                        *a | attr::RSTRIP
                    } else {
                        *a & !attr::RSTRIP
                    };
                }
            };
            set("</s>", true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set(t, false);
            }
        } else if name.contains("modern-bert") {
            set("[MASK]", attr::LSTRIP, true);
        }

        Ok(Self {
            kind,
            texts,
            scores,
            attrs,
            token_to_id,
            merge_parts,
            merge_ranks,
            pre,
            bos: to_u32(bos),
            eos: to_u32(eos),
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            escape_whitespaces,
            special,
            eog,
            chat_template: f.str_opt("tokenizer.chat_template")?.map(str::to_string),
        })
    }

    /// The id of a vocabulary string.
    pub fn id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// The rank of merging `a` and `b`, if that merge exists.
    pub fn rank(&self, a: &str, b: &str) -> Option<u32> {
        let pa = *self.merge_parts.get(a)?;
        let pb = *self.merge_parts.get(b)?;
        self.merge_ranks.get(&(pa, pb)).copied()
    }

    pub fn attr(&self, id: u32) -> u16 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }
}

const EOT_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const FIM_PRE: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];
