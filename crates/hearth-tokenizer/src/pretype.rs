//! What each `tokenizer.ggml.pre` value means: llama.cpp's pre-tokenizer expressions and
//! flags per pre-tokenizer type (`llm_tokenizer_bpe` and `llama_vocab::impl::load`).

use crate::{Error, Result};

/// How the words of one pre-tokenizer step are found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// llama.cpp's custom GPT-2 splitter.
    Gpt2,
    /// llama.cpp's custom Llama 3 (`digits` = 3), Qwen2 (1) and Qwen3.5 (1, `marks`) splitter.
    Llama3 { digits: usize, marks: bool },
    /// Runs of newlines and runs of everything else.
    Newlines,
    /// A general expression, in llama.cpp's syntax.
    Regex(&'static str),
}

const LLAMA3: Rule = Rule::Llama3 {
    digits: 3,
    marks: false,
};
const QWEN2: Rule = Rule::Llama3 {
    digits: 1,
    marks: false,
};
const QWEN35: Rule = Rule::Llama3 {
    digits: 1,
    marks: true,
};

/// What a `tokenizer.ggml.pre` value means.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreConfig {
    pub rules: &'static [Rule],
    /// GPT-2 byte-to-unicode encoding of words (false for SentencePiece-style BPE).
    pub byte_encode: bool,
    /// Whole words found in the vocabulary are taken as they are, without merging.
    pub ignore_merges: bool,
    /// Overrides the BPE default of not adding BOS.
    pub add_bos: bool,
    /// llama.cpp's `clean_spaces` (decode-time cleanup of " ," and the like).
    pub clean_spaces: bool,
    /// Spaces become U+2581 before merging (SentencePiece-style BPE).
    pub escape_whitespaces: bool,
    /// Gemma 4's special case for words made only of newlines.
    pub gemma4_newlines: bool,
    /// The BOS token is disabled (ChatGLM).
    pub no_bos: bool,
}

const fn cfg(rules: &'static [Rule]) -> PreConfig {
    PreConfig {
        rules,
        byte_encode: true,
        ignore_merges: false,
        add_bos: false,
        clean_spaces: true,
        escape_whitespaces: false,
        gemma4_newlines: false,
        no_bos: false,
    }
}

const DEFAULT: &[Rule] = &[
    Rule::Regex("[\\p{P}\\$\\+<=>\\^~\\|]+"),
    Rule::Gpt2,
    Rule::Regex("\\p{N}+"),
    Rule::Regex("[0-9][0-9][0-9]"),
];
const DEEPSEEK_LLM: &[Rule] = &[
    Rule::Regex("[\r\n]"),
    Rule::Regex("\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"),
    Rule::Regex("\\s?[!-/:-~！-／：-～‘-‟　-。]+"),
    Rule::Regex("\\s+$"),
    Rule::Regex("[一-龥ࠀ-一가-퟿]+"),
    Rule::Regex("\\p{N}+"),
];
const DEEPSEEK_CODER: &[Rule] = &[
    Rule::Regex("[\r\n]"),
    Rule::Regex("\\s?\\p{L}+"),
    Rule::Regex("\\s?\\p{P}+"),
    Rule::Regex("[一-龥ࠀ-一가-퟿]+"),
    Rule::Regex("\\p{N}"),
];
const DEEPSEEK3: &[Rule] = &[
    Rule::Regex("\\p{N}{1,3}"),
    Rule::Regex("[一-龥぀-ゟ゠-ヿ]+"),
    Rule::Regex("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
];
const FALCON: &[Rule] = &[
    Rule::Regex("[\\p{P}\\$\\+<=>\\^~\\|]+"),
    Rule::Gpt2,
    Rule::Regex("[0-9][0-9][0-9]"),
];
const STARCODER: &[Rule] = &[Rule::Regex("\\p{N}"), Rule::Gpt2];
const BLOOM: &[Rule] = &[Rule::Regex(" ?[^(\\s|.,!?…。，、।۔،)]+")];
const VIKING: &[Rule] = &[
    Rule::Regex(" ?[^(\\s|.,!?…。，、।۔،)]+"),
    Rule::Regex("\\p{N}"),
];
const UFAKZEKA: &[Rule] = &[Rule::Regex(
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
)];
const BAILINGMOE: &[Rule] = &[Rule::Regex(
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
)];
const SEED_CODER: &[Rule] = &[Rule::Regex(
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
)];
const MINICPM5: &[Rule] = &[
    Rule::Regex("\\p{N}{1,3}"),
    Rule::Regex("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
];

/// The configuration llama.cpp uses for `tokenizer.ggml.pre` = `name` (empty: missing).
pub(crate) fn pre_config(name: &str) -> Result<PreConfig> {
    let c = match name {
        "" | "default" => cfg(DEFAULT),
        "minicpm5" => PreConfig {
            ignore_merges: true,
            ..cfg(MINICPM5)
        },
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreConfig {
            ignore_merges: true,
            add_bos: true,
            ..cfg(&[LLAMA3])
        },
        "deepseek-llm" => PreConfig {
            clean_spaces: false,
            ..cfg(DEEPSEEK_LLM)
        },
        "deepseek-coder" => PreConfig {
            clean_spaces: false,
            ..cfg(DEEPSEEK_CODER)
        },
        "deepseek-v3" | "hunyuan-dense" | "hy_v4" | "joyai-llm" => PreConfig {
            clean_spaces: false,
            ..cfg(DEEPSEEK3)
        },
        "falcon" => cfg(FALCON),
        "mpt" | "olmo" | "jais" | "exaone4" | "gpt-2" | "phi-2" | "jina-es" | "jina-de"
        | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert"
        | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => cfg(&[Rule::Gpt2]),
        "trillion" | "granite-docling" => PreConfig {
            clean_spaces: false,
            ..cfg(&[Rule::Gpt2])
        },
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            cfg(STARCODER)
        }
        "command-r" | "smollm" => PreConfig {
            clean_spaces: false,
            ..cfg(STARCODER)
        },
        "gemma4" | "granite-embed-multi-311m" => PreConfig {
            byte_encode: false,
            escape_whitespaces: true,
            gemma4_newlines: true,
            ..cfg(&[Rule::Newlines])
        },
        "sarvam-moe" => PreConfig {
            byte_encode: false,
            escape_whitespaces: true,
            clean_spaces: false,
            ..cfg(&[Rule::Newlines])
        },
        "stablelm2" => cfg(&[QWEN2]),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open"
        | "grok-2" | "megrez" => PreConfig {
            clean_spaces: false,
            ..cfg(&[QWEN2])
        },
        "laguna" => PreConfig {
            clean_spaces: false,
            ..cfg(&[Rule::Newlines, QWEN2])
        },
        "qwen35" => PreConfig {
            clean_spaces: false,
            ..cfg(&[QWEN35])
        },
        "dbrx" | "smaug-bpe" => cfg(&[LLAMA3]),
        "chatglm-bpe" => PreConfig {
            no_bos: true,
            ..cfg(&[LLAMA3])
        },
        "glm4" | "glm5" => PreConfig {
            no_bos: true,
            ignore_merges: true,
            ..cfg(&[LLAMA3])
        },
        "poro-chat" => PreConfig {
            clean_spaces: false,
            ..cfg(BLOOM)
        },
        "bloom" | "gpt3-finnish" => cfg(BLOOM),
        "viking" => PreConfig {
            clean_spaces: false,
            ..cfg(VIKING)
        },
        "ufakzeka" => PreConfig {
            clean_spaces: false,
            ..cfg(UFAKZEKA)
        },
        "bailingmoe" | "bailingmoe2" | "llada-moe" => PreConfig {
            clean_spaces: false,
            ..cfg(BAILINGMOE)
        },
        "seed-coder" => PreConfig {
            clean_spaces: false,
            ..cfg(SEED_CODER)
        },
        "kimi-k2"
        | "afmoe"
        | "tekken"
        | "gpt-4o"
        | "llama4"
        | "kanana2"
        | "talkie"
        | "minimax-m2"
        | "granite-embed-multi-97m"
        | "tiny_aya"
        | "cohere2moe"
        | "superbpe"
        | "jais-2"
        | "chameleon"
        | "youtu"
        | "spark2_5"
        | "exaone-moe"
        | "whitespace" => return Err(Error::UnsupportedPreTokenizer(name.to_string())),
        other => return Err(Error::UnknownPreTokenizer(other.to_string())),
    };
    Ok(c)
}
