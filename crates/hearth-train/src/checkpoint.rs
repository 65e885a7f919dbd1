//! Checkpoints: `checkpoint-<step>/state.safetensors` under the output directory holds
//! the LoRA parameters, the AdamW moments and, as metadata, the run's settings and
//! progress. Resuming restores all of it, so the continued run takes the same steps
//! an uninterrupted one would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::encode::Encoded;
use crate::lora::{parse_targets, LoraConfig, LoraParams};
use crate::model::TrainModel;
use crate::optim::AdamW;
use crate::st::{self, Named};
use crate::trainer::{Progress, TrainConfig, Trainer};
use crate::{Error, Result};

const STATE_FILE: &str = "state.safetensors";

/// The settings a checkpoint pins: resuming with others is an error.
fn pinned(lora: &LoraConfig, cfg: &TrainConfig) -> BTreeMap<String, String> {
    let targets: Vec<&str> = lora.targets.iter().map(|t| t.peft_name()).collect();
    BTreeMap::from([
        ("lora_rank".into(), lora.rank.to_string()),
        ("lora_alpha".into(), lora.alpha.to_string()),
        ("lora_dropout".into(), lora.dropout.to_string()),
        ("lora_targets".into(), targets.join(",")),
        ("seed".into(), cfg.seed.to_string()),
        ("batch_size".into(), cfg.batch_size.to_string()),
        ("grad_accum".into(), cfg.grad_accum.to_string()),
    ])
}

impl Trainer<'_> {
    /// Writes a checkpoint under `out` and returns its directory.
    pub fn save_checkpoint(&self, out: &Path) -> Result<PathBuf> {
        let dir = out.join(format!("checkpoint-{:06}", self.progress.step));
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let mut tensors = Vec::new();
        for (i, (name, v)) in self.lora.named_vars().into_iter().enumerate() {
            let shape = v.dims().to_vec();
            let values = v
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            tensors.push(Named {
                name: format!("{name}.adam_m"),
                shape: shape.clone(),
                values: self.opt.m[i].clone(),
            });
            tensors.push(Named {
                name: format!("{name}.adam_v"),
                shape: shape.clone(),
                values: self.opt.v[i].clone(),
            });
            tensors.push(Named {
                name,
                shape,
                values,
            });
        }
        let mut meta = pinned(self.lora.config(), &self.cfg);
        meta.insert("step".into(), self.progress.step.to_string());
        meta.insert("consumed".into(), self.progress.consumed.to_string());
        meta.insert("dropout_rng".into(), self.progress.dropout_rng.to_string());
        meta.insert("adam_t".into(), self.opt.t.to_string());
        st::write(&dir.join(STATE_FILE), &tensors, meta)?;
        Ok(dir)
    }
}

/// The checkpoint of the highest step under `out`, if any.
pub fn latest_checkpoint(out: &Path) -> Result<Option<PathBuf>> {
    let Ok(rd) = std::fs::read_dir(out) else {
        return Ok(None);
    };
    let mut best: Option<(usize, PathBuf)> = None;
    for e in rd {
        let e = e.map_err(Error::io(out))?;
        let name = e.file_name().to_string_lossy().to_string();
        let Some(step) = name
            .strip_prefix("checkpoint-")
            .and_then(|s| s.parse::<usize>().ok())
        else {
            continue;
        };
        if e.path().join(STATE_FILE).exists() && best.as_ref().is_none_or(|(s, _)| step > *s) {
            best = Some((step, e.path()));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// The adapters saved in checkpoint directory `dir`, with the LoRA settings it pins
/// (for evaluating or generating with them).
pub fn load_lora(model: &TrainModel, dir: &Path) -> Result<LoraParams> {
    let path = dir.join(STATE_FILE);
    let (tensors, meta) = st::read(&path)?;
    let get = |k: &str| -> Result<&String> {
        meta.get(k).ok_or_else(|| Error::Checkpoint {
            path: path.clone(),
            what: format!("metadata `{k}` missing"),
        })
    };
    let parse_err = |k: &str| Error::Checkpoint {
        path: path.clone(),
        what: format!("metadata `{k}` is malformed"),
    };
    let config = LoraConfig {
        rank: get("lora_rank")?
            .parse()
            .map_err(|_| parse_err("lora_rank"))?,
        alpha: get("lora_alpha")?
            .parse()
            .map_err(|_| parse_err("lora_alpha"))?,
        dropout: get("lora_dropout")?
            .parse()
            .map_err(|_| parse_err("lora_dropout"))?,
        targets: parse_targets(get("lora_targets")?)?,
    };
    let params = LoraParams::new(config, model.config(), 0, model.dtype())?;
    for (name, v) in params.named_vars() {
        let t = tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::Checkpoint {
                path: path.clone(),
                what: format!("tensor `{name}` missing"),
            })?;
        if t.shape != v.dims() {
            return Err(Error::Checkpoint {
                path: path.clone(),
                what: format!(
                    "`{name}` has shape {:?}, the model needs {:?}",
                    t.shape,
                    v.dims()
                ),
            });
        }
        v.set(&Tensor::from_slice(&t.values, v.shape(), &Device::Cpu)?.to_dtype(v.dtype())?)?;
    }
    Ok(params)
}

/// Continues the run saved in checkpoint directory `dir` with settings `lora` and
/// `cfg`, which must pin the same values (the number of steps may change).
pub fn resume<'m>(
    model: &'m TrainModel,
    dir: &Path,
    lora: LoraConfig,
    cfg: TrainConfig,
    data: Vec<Encoded>,
) -> Result<Trainer<'m>> {
    let path = dir.join(STATE_FILE);
    let (tensors, meta) = st::read(&path)?;
    let bad = |what: String| Error::Checkpoint {
        path: path.clone(),
        what,
    };
    for (k, want) in pinned(&lora, &cfg) {
        let have = meta.get(&k).cloned().unwrap_or_default();
        if have != want {
            return Err(bad(format!(
                "saved with {k} = {have}, this run asks for {want}"
            )));
        }
    }
    let num = |k: &str| -> Result<u64> {
        meta.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("metadata `{k}` missing or not a number")))
    };
    let progress = Progress {
        step: num("step")? as usize,
        consumed: num("consumed")?,
        dropout_rng: num("dropout_rng")?,
    };
    // The targets as saved (same set as asked, checked above).
    let lora = LoraConfig {
        targets: parse_targets(&meta["lora_targets"])?,
        ..lora
    };
    let params = LoraParams::new(lora, model.config(), cfg.seed, model.dtype())?;
    let find = |name: &str| {
        tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .map(|i| &tensors[i])
            .map_err(|_| bad(format!("tensor `{name}` missing")))
    };
    let mut opt = AdamW::new(cfg.optim.clone(), &[]);
    opt.t = num("adam_t")?;
    for (name, v) in params.named_vars() {
        let p = find(&name)?;
        if p.shape != v.dims() {
            return Err(bad(format!(
                "`{name}` has shape {:?}, the model needs {:?}",
                p.shape,
                v.dims()
            )));
        }
        let t = Tensor::from_slice(&p.values, v.shape(), &Device::Cpu)?.to_dtype(v.dtype())?;
        v.set(&t)?;
        opt.m.push(find(&format!("{name}.adam_m"))?.values.clone());
        opt.v.push(find(&format!("{name}.adam_v"))?.values.clone());
    }
    Trainer::from_parts(model, params, cfg, data, Some((opt, progress)))
}
