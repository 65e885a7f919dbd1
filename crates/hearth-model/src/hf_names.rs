//! How GGUF and Hugging Face name and lay out the same weights: tensor names, the
//! row order of llama's query/key projections (llama.cpp's converter interleaves the
//! RoPE halves), and Gemma's norm weights (stored as `w` by HF, `1 + w` by GGUF).
//!
//! Shared by the converters (hearth-convert) and the LoRA adapter formats, which
//! must lay out a PEFT `lora_B` of `q_proj`/`k_proj` exactly as the base weight was.

/// Per-block tensor names: (GGUF suffix, HF suffix) for `arch`.
fn block_names(arch: &str) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("attn_norm", "input_layernorm"),
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ];
    if arch == "gemma3" {
        v.extend([
            ("attn_q_norm", "self_attn.q_norm"),
            ("attn_k_norm", "self_attn.k_norm"),
            ("post_attention_norm", "post_attention_layernorm"),
            ("ffn_norm", "pre_feedforward_layernorm"),
            ("post_ffw_norm", "post_feedforward_layernorm"),
        ]);
    } else {
        v.push(("ffn_norm", "post_attention_layernorm"));
    }
    v
}

const GLOBAL: &[(&str, &str)] = &[
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// The HF name of a GGUF tensor.
pub fn to_hf(arch: &str, name: &str) -> Option<String> {
    if let Some((_, hf)) = GLOBAL.iter().find(|(g, _)| *g == name) {
        return Some(hf.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, tail) = rest.split_once('.')?;
    let base = tail.strip_suffix(".weight")?;
    let (_, hf) = block_names(arch).into_iter().find(|(g, _)| *g == base)?;
    Some(format!("model.layers.{layer}.{hf}.weight"))
}

/// The GGUF name of an HF tensor.
pub fn to_gguf(arch: &str, name: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL.iter().find(|(_, h)| *h == name) {
        return Some(g.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let base = tail.strip_suffix(".weight")?;
    let (g, _) = block_names(arch).into_iter().find(|(_, h)| *h == base)?;
    Some(format!("blk.{layer}.{g}.weight"))
}

/// Which transformation a tensor needs between the two layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixup {
    /// Same values, same order.
    None,
    /// Rows of a llama query/key projection with this many heads.
    RopeRows(usize),
    /// A Gemma norm: GGUF stores `1 + w`.
    NormOffset,
}

/// The fixup tensor `gguf_name` needs (`heads`, `kv_heads` of the model).
pub fn fixup(arch: &str, gguf_name: &str, heads: usize, kv_heads: usize) -> Fixup {
    if arch == "gemma3" && gguf_name.ends_with("norm.weight") {
        return Fixup::NormOffset;
    }
    if arch == "llama" {
        if gguf_name.ends_with(".attn_q.weight") {
            return Fixup::RopeRows(heads);
        }
        if gguf_name.ends_with(".attn_k.weight") {
            return Fixup::RopeRows(kv_heads);
        }
    }
    Fixup::None
}

/// Applies `fix` to `values` (rows of `cols`) going from HF to GGUF (`to_gguf`) or back.
pub fn apply(fix: Fixup, values: &mut Vec<f32>, cols: usize, to_gguf: bool) {
    match fix {
        Fixup::None => {}
        Fixup::NormOffset => {
            let d = if to_gguf { 1.0 } else { -1.0 };
            values.iter_mut().for_each(|v| *v += d);
        }
        Fixup::RopeRows(heads) => {
            let rows = values.len() / cols.max(1);
            if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
                return;
            }
            let (hd, half) = (rows / heads, rows / heads / 2);
            let mut out = vec![0.0; values.len()];
            for h in 0..heads {
                for i in 0..2 {
                    for j in 0..half {
                        let hf = h * hd + i * half + j;
                        let gg = h * hd + 2 * j + i;
                        let (src, dst) = if to_gguf { (hf, gg) } else { (gg, hf) };
                        out[dst * cols..(dst + 1) * cols]
                            .copy_from_slice(&values[src * cols..(src + 1) * cols]);
                    }
                }
            }
            *values = out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for arch in ["llama", "gemma3"] {
            for g in [
                "token_embd.weight",
                "blk.3.attn_q.weight",
                "blk.17.ffn_norm.weight",
                "output_norm.weight",
            ] {
                let hf = to_hf(arch, g).unwrap();
                assert_eq!(to_gguf(arch, &hf).unwrap(), g, "{arch} {hf}");
            }
        }
        assert_eq!(
            to_hf("gemma3", "blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.pre_feedforward_layernorm.weight"
        );
        assert_eq!(to_hf("llama", "blk.0.attn_q_norm.weight"), None);
    }

    #[test]
    fn fixups_invert() {
        let v: Vec<f32> = (0..8 * 3).map(|i| i as f32).collect();
        let mut w = v.clone();
        apply(Fixup::RopeRows(2), &mut w, 3, true);
        assert_ne!(w, v);
        // Head 0 has rows 0..4: HF halves [0,1 | 2,3] become pairs (0,2), (1,3).
        assert_eq!(&w[3..6], &v[6..9]);
        apply(Fixup::RopeRows(2), &mut w, 3, false);
        assert_eq!(w, v);
        let mut n = vec![0.5f32, 2.0];
        apply(Fixup::NormOffset, &mut n, 2, true);
        assert_eq!(n, vec![1.5, 3.0]);
    }
}
