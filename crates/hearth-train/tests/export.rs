//! Adapter files: PEFT names, shapes and Hugging Face row order, GGUF LoRA layout,
//! and the provenance record in both.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use hearth_convert::hf_names::{self, Fixup};
use hearth_gguf::GgufFile;
use hearth_lineage::{Provenance, METADATA_KEY};
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
    let params = BTreeMap::from([("rank".to_string(), "4".to_string())]);
    let record = export::provenance(&file, &origin, params).unwrap();
    assert_eq!(record.license.as_deref(), Some("apache-2.0"));
    assert_eq!(record.source_sha256.len(), 64);
    assert_eq!(record.parameters["data_sha256"].len(), 64);

    let out = dir.path().join("adapter");
    export::write_peft(&out, &lora, &cfg, "tiny", &record).unwrap();
    let buf = std::fs::read(out.join(export::PEFT_WEIGHTS)).unwrap();
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
    let (q_dim, kv_dim, d) = (cfg.q_dim(), cfg.kv_dim(), cfg.d_model);
    let (sa, _) = f32s("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
    assert_eq!(sa, vec![4, d]);
    let (sb, mut qb) = f32s("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight");
    assert_eq!(sb, vec![q_dim, 4]);
    let (sk, _) = f32s("base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight");
    assert_eq!(sk, vec![kv_dim, 4]);
    let (sd, _) = f32s("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight");
    assert_eq!(sd, vec![4, cfg.ffn_dim]);
    // q_proj's B is in Hugging Face row order: permuting it back gives the trained B.
    let trained = lora
        .get(1, Target::Q)
        .unwrap()
        .b
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_ne!(qb, trained);
    hf_names::apply(Fixup::RopeRows(cfg.n_heads), &mut qb, 4, true);
    assert_eq!(qb, trained);
    let (_, vb) = f32s("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
    let v_trained = lora.get(1, Target::V).unwrap().b.flatten_all().unwrap();
    assert_eq!(vb, v_trained.to_vec1::<f32>().unwrap());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(export::PEFT_CONFIG)).unwrap()).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 4);
    assert_eq!(config["lora_alpha"], 8.0);
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "k_proj", "v_proj", "down_proj"])
    );

    let gp = out.join(export::GGUF_ADAPTER);
    export::write_gguf(&gp, &lora, &cfg, &record).unwrap();
    let g = GgufFile::open(&gp).unwrap();
    assert_eq!(g.str("general.type").unwrap(), "adapter");
    assert_eq!(g.str("adapter.type").unwrap(), "lora");
    assert_eq!(
        Provenance::from_json(g.str(METADATA_KEY).unwrap()).unwrap(),
        record
    );
    let a = g.tensor("blk.1.attn_q.weight.lora_a").unwrap();
    assert_eq!(a.dims, vec![d as u64, 4]);
    let b = g.tensor("blk.1.attn_q.weight.lora_b").unwrap();
    assert_eq!(b.dims, vec![4, q_dim as u64]);
}
