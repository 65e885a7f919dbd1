use super::*;
use crate::hf_names;
use crate::tiny::TinySpec;
use crate::Transformer;

fn config(spec: TinySpec) -> ModelConfig {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    spec.write(&p).unwrap();
    Transformer::open(&p).unwrap().config().clone()
}

/// Every kind of pair: q/k (permuted for llama), v, down with another rank and
/// scale, and the embedding.
fn adapter(cfg: &ModelConfig) -> LoraAdapter {
    let mut a = LoraAdapter::random(cfg, &[Proj::Q, Proj::K, Proj::V], 4, 8.0, 0.02, 1);
    let b = LoraAdapter::random(cfg, &[Proj::Down], 2, 3.0, 0.05, 2);
    a.tensors.extend(b.tensors);
    let mut n = Normal::new(3);
    let (rows, cols, rank) = (cfg.vocab_size, cfg.d_model, 3);
    a.tensors.insert(
        "token_embd.weight".into(),
        LoraTensor {
            rows,
            cols,
            rank,
            a: (0..rank * cols).map(|_| n.next()).collect(),
            b: (0..rows * rank).map(|_| n.next() * 0.01).collect(),
            scale: 0.5,
        },
    );
    a.base_model = Some("tiny".into());
    a
}

fn same(a: &LoraAdapter, b: &LoraAdapter) {
    assert_eq!(a.architecture, b.architecture);
    assert_eq!(a.base_model, b.base_model);
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    for (k, x) in &a.tensors {
        let y = &b.tensors[k];
        assert_eq!((x.rows, x.cols, x.rank), (y.rows, y.cols, y.rank), "{k}");
        assert_eq!(x.a, y.a, "{k} A");
        let (dx, dy) = (x.delta(), y.delta());
        for (p, q) in dx.iter().zip(&dy) {
            assert!((p - q).abs() <= 1e-5 * p.abs().max(1e-3), "{k}: {p} vs {q}");
        }
    }
}

#[test]
fn peft_round_trip() {
    for spec in [TinySpec::llama(), TinySpec::gemma3()] {
        let cfg = config(spec);
        let a = adapter(&cfg);
        let dir = tempfile::tempdir().unwrap();
        a.write_peft(dir.path(), &cfg).unwrap();
        let b = LoraAdapter::read_peft(dir.path(), &cfg).unwrap();
        same(&a, &b);
        // Per-tensor scales survive exactly through rank_pattern / alpha_pattern.
        for (k, t) in &a.tensors {
            assert_eq!(t.scale, b.tensors[k].scale, "{k}");
            assert_eq!(t.b, b.tensors[k].b, "{k}");
        }
        assert_eq!(b.source.as_deref(), Some(dir.path()));
    }
}

#[test]
fn gguf_round_trip_and_peft_gguf_peft() {
    let cfg = config(TinySpec::llama());
    let a = adapter(&cfg);
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("a.gguf");
    a.write_gguf_lora(&g).unwrap();
    let b = LoraAdapter::read_gguf_lora(&g).unwrap();
    same(&a, &b);
    // Scales the file's single alpha cannot carry were folded into B.
    assert_eq!(b.tensors["blk.0.attn_q.weight"].scale, 2.0);
    assert_eq!(
        b.tensors["blk.0.attn_q.weight"].b,
        a.tensors["blk.0.attn_q.weight"].b
    );

    let p1 = dir.path().join("peft1");
    a.write_peft(&p1, &cfg).unwrap();
    let from_peft = LoraAdapter::open(&p1, &cfg).unwrap();
    let g2 = dir.path().join("b.gguf");
    from_peft.write_gguf_lora(&g2).unwrap();
    let back = LoraAdapter::open(&g2, &cfg).unwrap();
    let p2 = dir.path().join("peft2");
    back.write_peft(&p2, &cfg).unwrap();
    same(&a, &LoraAdapter::read_peft(&p2, &cfg).unwrap());
}

/// PEFT's `lora_B` of `q_proj` is in Hugging Face row order; the delta it makes must
/// be the HF delta with the rows permuted exactly as the converter permuted `W_q`.
#[test]
fn peft_q_rows_follow_the_base_weight_permutation() {
    let cfg = config(TinySpec::llama());
    let dir = tempfile::tempdir().unwrap();
    let a = LoraAdapter::random(&cfg, &[Proj::Q, Proj::K], 2, 2.0, 0.1, 9);
    a.write_peft(dir.path(), &cfg).unwrap();
    // Read the HF-layout B back by hand and build the HF delta.
    let bytes = std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (proj, heads) in [("q_proj", cfg.n_heads), ("k_proj", cfg.n_kv_heads)] {
        let name =
            |ab: &str| format!("base_model.model.model.layers.1.self_attn.{proj}.lora_{ab}.weight");
        let f = |n: String| -> Vec<f32> {
            st.tensor(&n)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let (ha, hb) = (f(name("A")), f(name("B")));
        let key = format!(
            "blk.1.{}.weight",
            if proj == "q_proj" { "attn_q" } else { "attn_k" }
        );
        let t = &a.tensors[&key];
        let hf = LoraTensor {
            a: ha,
            b: hb,
            ..t.clone()
        };
        let mut want = hf.delta();
        hf_names::apply(hf_names::Fixup::RopeRows(heads), &mut want, t.cols, true);
        assert_ne!(want, hf.delta(), "{proj}: the permutation should matter");
        assert_eq!(want, t.delta(), "{proj}");
    }
}

#[test]
fn mismatched_adapters_are_clear_errors() {
    let llama = config(TinySpec::llama());
    let gemma = config(TinySpec::gemma3());
    let a = LoraAdapter::random(&llama, &[Proj::V], 2, 2.0, 0.1, 1);
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("a.gguf");
    a.write_gguf_lora(&g).unwrap();
    let msg = LoraAdapter::open(&g, &gemma).unwrap_err().to_string();
    assert!(
        msg.contains("a.gguf") && msg.contains("`llama`") && msg.contains("`gemma3`"),
        "{msg}"
    );

    // Same architecture, other shapes.
    let wide = config(TinySpec {
        d_model: 512,
        ..TinySpec::llama()
    });
    let msg = LoraAdapter::open(&g, &wide).unwrap_err().to_string();
    assert!(
        msg.contains("blk.0.attn_v.weight") && msg.contains("wrong base model"),
        "{msg}"
    );

    // More layers than the model.
    let mut deep = a.clone();
    let t = deep.tensors["blk.0.attn_v.weight"].clone();
    deep.tensors.insert("blk.9.attn_v.weight".into(), t);
    let msg = deep.check(&llama).unwrap_err().to_string();
    assert!(
        msg.contains("blk.9.attn_v.weight") && msg.contains("2 layers"),
        "{msg}"
    );

    // A norm cannot take a delta.
    let mut norm = a.clone();
    let t = norm.tensors["blk.0.attn_v.weight"].clone();
    norm.tensors.insert("blk.0.attn_norm.weight".into(), t);
    let msg = norm.check(&llama).unwrap_err().to_string();
    assert!(
        msg.contains("attn_norm") && msg.contains("cannot take"),
        "{msg}"
    );

    // PEFT: DoRA, a lone A, a model file given as adapter.
    let p = dir.path().join("peft");
    a.write_peft(&p, &llama).unwrap();
    let cfg_path = p.join("adapter_config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text.replace("\"use_dora\": false", "\"use_dora\": true"),
    )
    .unwrap();
    let msg = LoraAdapter::open(&p, &llama).unwrap_err().to_string();
    assert!(
        msg.contains("adapter_config.json") && msg.contains("DoRA"),
        "{msg}"
    );
    std::fs::write(&cfg_path, text).unwrap();
    let st_path = p.join("adapter_model.safetensors");
    let bytes = std::fs::read(&st_path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let keep: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.contains("layers.1.self_attn.v_proj.lora_B"))
        .collect();
    safetensors::serialize_to_file(keep, None, &st_path).unwrap();
    let msg = LoraAdapter::open(&p, &llama).unwrap_err().to_string();
    assert!(
        msg.contains("layers.1.self_attn.v_proj") && msg.contains("only one"),
        "{msg}"
    );

    let model = dir.path().join("m.gguf");
    TinySpec::llama().write(&model).unwrap();
    let msg = LoraAdapter::open(&model, &llama).unwrap_err().to_string();
    assert!(
        msg.contains("m.gguf") && msg.contains("expected `adapter`"),
        "{msg}"
    );
}

#[test]
fn rslora_and_alpha_pattern_scales() {
    let cfg = config(TinySpec::llama());
    let a = LoraAdapter::random(&cfg, &[Proj::Q, Proj::O], 4, 8.0, 0.1, 1);
    let dir = tempfile::tempdir().unwrap();
    a.write_peft(dir.path(), &cfg).unwrap();
    let cfg_path = dir.path().join("adapter_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    v["use_rslora"] = true.into();
    v["alpha_pattern"] = serde_json::json!({"o_proj": 2.0});
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    let b = LoraAdapter::read_peft(dir.path(), &cfg).unwrap();
    assert_eq!(b.tensors["blk.0.attn_q.weight"].scale, 8.0 / 2.0);
    assert_eq!(b.tensors["blk.1.attn_output.weight"].scale, 2.0 / 2.0);
}
