//! Which storage type each tensor gets: one type for every weight matrix, or a
//! llama.cpp-style mixture (`Q4_K_M`, `Q5_K_M`) that spends more bits where the error
//! hurts most (the output head, the value projections and some `ffn_down`s).

use std::str::FromStr;

use hearth_gguf::GgmlType;

use crate::{Error, Result};

/// A quantization scheme as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Every weight matrix as this type (the output head gets Q6_K for the 4/5-bit
    /// types, as llama.cpp does); vectors stay F32.
    Uniform(GgmlType),
    /// Q4_K, with Q6_K for the output head and for `attn_v`/`ffn_down` in the first
    /// and last eighth of layers and every third layer between.
    Q4KM,
    /// Q5_K with the same Q6_K tensors as [`Scheme::Q4KM`].
    Q5KM,
}

/// Names [`Scheme::from_str`] accepts.
pub const SCHEME_NAMES: &str =
    "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M";

impl FromStr for Scheme {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        use GgmlType::*;
        let t = match s.to_ascii_uppercase().as_str() {
            "Q4_K_M" => return Ok(Scheme::Q4KM),
            "Q5_K_M" => return Ok(Scheme::Q5KM),
            "F32" => F32,
            "F16" => F16,
            "BF16" => BF16,
            "Q8_0" => Q8_0,
            "Q4_0" => Q4_0,
            "Q4_1" => Q4_1,
            "Q5_0" => Q5_0,
            "Q5_1" => Q5_1,
            "Q2_K" => Q2_K,
            "Q3_K" => Q3_K,
            "Q4_K" | "Q4_K_S" => Q4_K,
            "Q5_K" | "Q5_K_S" => Q5_K,
            "Q6_K" => Q6_K,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown quantization type `{s}` (known: {SCHEME_NAMES})"
                )))
            }
        };
        Ok(Scheme::Uniform(t))
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scheme::Uniform(t) => write!(f, "{t}"),
            Scheme::Q4KM => f.write_str("Q4_K_M"),
            Scheme::Q5KM => f.write_str("Q5_K_M"),
        }
    }
}

impl Scheme {
    /// llama.cpp's `general.file_type` for this scheme.
    pub fn file_type(self) -> u32 {
        use GgmlType::*;
        match self {
            Scheme::Q4KM => 15,
            Scheme::Q5KM => 17,
            Scheme::Uniform(t) => match t {
                F32 => 0,
                F16 => 1,
                Q4_0 => 2,
                Q4_1 => 3,
                Q8_0 => 7,
                Q5_0 => 8,
                Q5_1 => 9,
                Q2_K => 10,
                Q3_K => 12,
                Q4_K => 14,
                Q5_K => 16,
                Q6_K => 18,
                BF16 => 32,
                _ => 0,
            },
        }
    }

    fn base(self) -> GgmlType {
        match self {
            Scheme::Uniform(t) => t,
            Scheme::Q4KM => GgmlType::Q4_K,
            Scheme::Q5KM => GgmlType::Q5_K,
        }
    }

    fn is_float(self) -> bool {
        matches!(
            self,
            Scheme::Uniform(GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
        )
    }
}

/// What the recipe needs to know about the model's tensors.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Blocks.
    pub n_layers: usize,
    /// Whether an `output.weight` exists (otherwise the embedding doubles as the head).
    pub has_output: bool,
}

/// llama.cpp's `use_more_bits`: the first and last eighth of layers, and every third
/// layer in between.
fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i as isize - (n / 8) as isize).rem_euclid(3) == 2
}

fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// Whether a tensor is a weight matrix the scheme changes (2-D, named `*.weight`).
pub fn is_quantizable(name: &str, dims: &[u64]) -> bool {
    name.ends_with(".weight") && dims.len() >= 2 && dims.iter().skip(1).any(|&d| d > 1)
}

/// The type for one tensor (`dims` in ggml order, `dims[0]` the row length).
pub fn type_for(scheme: Scheme, layout: &Layout, name: &str, dims: &[u64]) -> GgmlType {
    if !is_quantizable(name, dims) {
        return GgmlType::F32;
    }
    if scheme.is_float() {
        return scheme.base();
    }
    let is_head = name == "output.weight" || (!layout.has_output && name == "token_embd.weight");
    let mut t = scheme.base();
    if is_head {
        if t != GgmlType::Q8_0 {
            t = GgmlType::Q6_K;
        }
    } else if matches!(scheme, Scheme::Q4KM | Scheme::Q5KM) {
        let more = layer_of(name).is_some_and(|i| use_more_bits(i, layout.n_layers));
        if (name.contains("attn_v.weight") || name.contains("ffn_down")) && more {
            t = GgmlType::Q6_K;
        } else if name.contains("attn_qkv.weight") {
            t = if scheme == Scheme::Q4KM {
                GgmlType::Q5_K
            } else {
                GgmlType::Q6_K
            };
        }
    }
    fallback(t, dims[0])
}

/// A type whose blocks fit rows of `row_len`: llama.cpp's fallbacks for K-quants.
fn fallback(t: GgmlType, row_len: u64) -> GgmlType {
    use GgmlType::*;
    if row_len.is_multiple_of(t.block_len() as u64) {
        return t;
    }
    let alt = match t {
        Q4_K => Q5_0,
        Q5_K => Q5_1,
        Q6_K => Q8_0,
        Q2_K | Q3_K => Q4_0,
        _ => F16,
    };
    if row_len.is_multiple_of(alt.block_len() as u64) {
        alt
    } else {
        F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GgmlType::*;

    fn layout(n: usize) -> Layout {
        Layout {
            n_layers: n,
            has_output: false,
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!("q4_k_m".parse::<Scheme>().unwrap(), Scheme::Q4KM);
        assert_eq!("Q8_0".parse::<Scheme>().unwrap(), Scheme::Uniform(Q8_0));
        let err = "Q7".parse::<Scheme>().unwrap_err().to_string();
        assert!(err.contains("Q7") && err.contains("Q4_K_M"), "{err}");
    }

    #[test]
    fn q4_k_m_mixture() {
        let l = layout(30);
        let d = [1536u64, 576];
        // Layers 0..3 and 26..29 get more bits; 5 = 3 + 2 does too; 4 does not.
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.0.ffn_down.weight", &d),
            Q6_K
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.5.ffn_down.weight", &d),
            Q6_K
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.4.ffn_down.weight", &d),
            Q4_K
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.29.ffn_down.weight", &d),
            Q6_K
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.4.ffn_up.weight", &[2048, 640]),
            Q4_K
        );
        // Rows of 576 do not fit 256-blocks: llama.cpp's fallbacks.
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.4.attn_q.weight", &[576, 576]),
            Q5_0
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.0.attn_v.weight", &[576, 192]),
            Q8_0
        );
        // Tied embeddings are the head.
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "token_embd.weight", &[576, 49152]),
            Q8_0
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "token_embd.weight", &[512, 100]),
            Q6_K
        );
        assert_eq!(
            type_for(Scheme::Q4KM, &l, "blk.0.attn_norm.weight", &[576]),
            F32
        );
    }

    #[test]
    fn uniform_types() {
        let l = Layout {
            n_layers: 2,
            has_output: true,
        };
        let s = Scheme::Uniform(Q8_0);
        assert_eq!(type_for(s, &l, "output.weight", &[64, 10]), Q8_0);
        assert_eq!(type_for(s, &l, "token_embd.weight", &[64, 10]), Q8_0);
        let s = Scheme::Uniform(Q4_0);
        assert_eq!(type_for(s, &l, "output.weight", &[512, 10]), Q6_K);
        assert_eq!(type_for(s, &l, "blk.0.attn_q.weight", &[48, 10]), F16);
        assert_eq!(
            type_for(Scheme::Uniform(F16), &l, "output.weight", &[50, 10]),
            F16
        );
    }
}
