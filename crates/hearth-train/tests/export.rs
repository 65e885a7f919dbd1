//! Adapter files through hearth-model's `LoraAdapter`: PEFT names, shapes and Hugging
//! Face row order, GGUF LoRA layout, the provenance record in both, and both read
//! back equal to the trained pairs.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use hearth_gguf::GgufFile;
use hearth_lineage::{Provenance, METADATA_KEY};
use hearth_model::hf_names::{self, Fixup};
use hearth_model::lora::LoraAdapter;
use hearth_model::tiny::TinySpec;
use hearth_train::export::{self, Origin};
use hearth_train::rng::Rng;
use hearth_train::{LoraConfig, LoraParams, Target};

#[test]
fn peft_and_gguf_files_carry_the_adapters_and_their_record() {
    let spec = TinySpec::llama();
    let (dir, path) = common::tiny(&spec);
    let file = GgufFile::open(&path).unwrap();
    let cfg = hearth_model::config_from_gguf(&file).unwrap();
    let lc = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec![Target::Q, Target::K, Target::V, Target::Down],
    };
    let lora = LoraParams::new(lc, &cfg, 3, DType::F32).unwrap();
    let mut rng = Rng::new(1, 2);
    for (_, v) in lora.named_vars() {
        let vals: Vec<f32> = (0..v.elem_count()).map(|_| rng.next_f32()).collect();
        v.set(&Tensor::from_vec(vals, v.shape(), v.device()).unwrap())
            .unwrap();
    }
    let data = dir.path().join("train.jsonl");
    std::fs::write(&data, "{\"prompt\": \"a\", \"response\": \"b\"}\n").unwrap();
    let origin = Origin {
        base: &path,
        data: std::slice::from_ref(&data),
        tool_version: "test",
    };
    let params = BTreeMap::from([
        ("rank".to_string(), "4".to_string()),
        ("dropout".to_string(), "0.1".to_string()),
    ]);
    let record = export::provenance(&file, &origin, params).unwrap();
    assert_eq!(record.license.as_deref(), Some("apache-2.0"));
    assert_eq!(record.source_sha256.len(), 64);
    assert_eq!(record.parameters["data_sha256"].len(), 64);

    let adapter =
        export::to_adapter(&lora, &cfg, Some("tiny".into()), Some(record.clone())).unwrap();
    let out = dir.path().join("adapter");
    let (peft, gguf) = export::write_adapters(&out, &adapter, &cfg).unwrap();
    // PEFT's config says how the adapter was trained: r, alpha and dropout.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(export::PEFT_CONFIG)).unwrap())
            .unwrap();
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(config["lora_dropout"], 0.1);

    // Raw PEFT file: names, shapes, Hugging Face row order, record in the metadata.
    let buf = std::fs::read(&peft).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&buf).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(Provenance::from_json(&meta[METADATA_KEY]).unwrap(), record);
    let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
    assert_eq!(st.names().len(), 2 * 4 * spec.n_layers);
    let f32s = |name: &str| -> (Vec<usize>, Vec<f32>) {
        let t = st.tensor(name).unwrap();
        let v = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        (t.shape().to_vec(), v)
    };
    let (q_dim, d) = (cfg.q_dim(), cfg.d_model);
    let (sa, _) = f32s("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
    assert_eq!(sa, vec![4, d]);
    let (sb, mut qb) = f32s("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight");
    assert_eq!(sb, vec![q_dim, 4]);
    let (sd, _) = f32s("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
    assert_eq!(sd, vec![4, cfg.ffn_dim]);
    let trained = |t: Target| -> Vec<f32> {
        let b = &lora.get(1, t).unwrap().b;
        b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_ne!(qb, trained(Target::Q));
    hf_names::apply(Fixup::RopeRows(cfg.n_heads), &mut qb, 4, true);
    assert_eq!(qb, trained(Target::Q));
    let (_, vb) = f32s("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
    assert_eq!(vb, trained(Target::V));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(export::PEFT_CONFIG)).unwrap()).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert!(config[METADATA_KEY].is_object());

    // Both files read back as the adapter that was written, record included.
    let g = GgufFile::open(&gguf).unwrap();
    assert_eq!(g.str("general.type").unwrap(), "adapter");
    let a = g.tensor("blk.1.attn_q.weight.lora_a").unwrap();
    assert_eq!(a.dims, vec![d as u64, 4]);
    for p in [&out, &gguf] {
        let back = LoraAdapter::open(p, &cfg).unwrap();
        assert_eq!(back.tensors, adapter.tensors, "{}", p.display());
        assert_eq!(back.provenance.as_ref(), Some(&record), "{}", p.display());
    }
}
