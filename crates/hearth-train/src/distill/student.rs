//! The student: a model whose weights are trainable variables, started from a subset
//! of the teacher's blocks (`half`: every other one, DistilBERT's choice), from
//! random weights of a smaller shape, or from an existing model with the teacher's
//! tokenizer. The (tied) embeddings stay frozen unless asked, as DistilBERT does;
//! random ones always train.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Var};
use hearth_gguf::{GgufFile, Value};
use hearth_model::ModelConfig;

use crate::model::TrainModel;
use crate::weights::Weights;
use crate::{Error, Result};

/// Tensors that hold the vocabulary: frozen unless embeddings train.
const EMBEDDINGS: [&str; 2] = ["token_embd.weight", "output.weight"];

/// A trainable model and its variables, named as GGUF tensors.
#[derive(Debug)]
pub struct Student {
    /// The differentiable model.
    pub model: TrainModel,
    vars: Vec<(String, Var)>,
    /// How it was initialised, for the provenance record.
    pub init: String,
}

/// Parses `--student-layers`: `half` (every other block: 0, 2, 4, ...) or a
/// comma-separated list of the teacher's block indices.
pub fn parse_layers(s: &str, teacher_layers: usize) -> Result<Vec<usize>> {
    let layers: Vec<usize> = if s.trim() == "half" {
        (0..teacher_layers).step_by(2).collect()
    } else {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<usize>()
                    .map_err(|_| Error::Config(format!("student layer `{p}` is not a number")))
            })
            .collect::<Result<_>>()?
    };
    if layers.is_empty() {
        return Err(Error::Config("the student needs at least one layer".into()));
    }
    if let Some(&l) = layers.iter().find(|&&l| l >= teacher_layers) {
        return Err(Error::Config(format!(
            "student layer {l} does not exist: the teacher has {teacher_layers} (0 to {})",
            teacher_layers - 1
        )));
    }
    let distinct: HashSet<_> = layers.iter().collect();
    if distinct.len() != layers.len() {
        return Err(Error::Config(format!(
            "student layers {s} name a layer twice"
        )));
    }
    Ok(layers)
}

/// A student shape for random initialisation: every size the teacher's unless set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudentShape {
    /// Blocks.
    pub layers: Option<usize>,
    /// Residual width.
    pub d_model: Option<usize>,
    /// Feed-forward width.
    pub ffn_dim: Option<usize>,
    /// Query heads.
    pub heads: Option<usize>,
    /// Key/value heads.
    pub kv_heads: Option<usize>,
    /// Dimensions per head.
    pub head_dim: Option<usize>,
}

impl std::str::FromStr for StudentShape {
    type Err = Error;

    /// `layers=4,d_model=256,ffn=512,heads=4,kv_heads=2,head_dim=64` (any subset).
    fn from_str(s: &str) -> Result<Self> {
        let mut out = StudentShape::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::Config(format!("student config `{part}` should be key=value"))
            })?;
            let n: usize = v.trim().parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                Error::Config(format!("student config `{part}`: a positive number"))
            })?;
            let slot = match k.trim() {
                "layers" => &mut out.layers,
                "d_model" => &mut out.d_model,
                "ffn" | "ffn_dim" => &mut out.ffn_dim,
                "heads" => &mut out.heads,
                "kv_heads" => &mut out.kv_heads,
                "head_dim" => &mut out.head_dim,
                other => {
                    return Err(Error::Config(format!(
                        "unknown student config key `{other}` (layers, d_model, ffn, heads, kv_heads, head_dim)"
                    )))
                }
            };
            *slot = Some(n);
        }
        Ok(out)
    }
}

impl StudentShape {
    /// The teacher's config with these sizes; layer `i` keeps the attention settings
    /// (window, RoPE) of teacher layer `i` (cycling when the student is deeper).
    pub fn config(&self, teacher: &ModelConfig) -> Result<ModelConfig> {
        let mut c = teacher.clone();
        let n = self.layers.unwrap_or(teacher.n_layers());
        c.layers = (0..n)
            .map(|i| teacher.layers[i % teacher.n_layers()].clone())
            .collect();
        c.d_model = self.d_model.unwrap_or(c.d_model);
        c.ffn_dim = self.ffn_dim.unwrap_or(c.ffn_dim);
        c.n_heads = self.heads.unwrap_or(c.n_heads);
        c.n_kv_heads = self.kv_heads.unwrap_or(c.n_kv_heads.min(c.n_heads));
        if let Some(hd) = self.head_dim.filter(|&h| h != c.head_dim) {
            c.rope_dim = hd.min(c.rope_dim * hd / c.head_dim.max(1)) & !1;
            c.attn_scale = 1.0 / (hd as f32).sqrt();
            c.head_dim = hd;
        }
        if c.embed_scale.is_some() {
            c.embed_scale = Some((c.d_model as f32).sqrt());
        }
        if !c.n_heads.is_multiple_of(c.n_kv_heads) || c.rope_dim == 0 {
            return Err(Error::Config(format!(
                "student config: {} query heads cannot share {} key/value heads of size {}",
                c.n_heads, c.n_kv_heads, c.head_dim
            )));
        }
        Ok(c)
    }
}

fn trainable(train_embeddings: bool) -> impl Fn(&str) -> bool {
    move |name| train_embeddings || !EMBEDDINGS.contains(&name)
}

impl Student {
    /// The teacher's blocks `layers` (see [`parse_layers`]) with its embeddings and
    /// final norm.
    pub fn from_layers(
        teacher: &TrainModel,
        layers: &[usize],
        train_embeddings: bool,
    ) -> Result<Self> {
        let mut w = teacher.w.select_layers(layers)?;
        let mut config = teacher.config().clone();
        config.layers = layers
            .iter()
            .map(|&l| teacher.config().layers[l].clone())
            .collect();
        let vars = w.make_trainable(trainable(train_embeddings))?;
        let list: Vec<String> = layers.iter().map(usize::to_string).collect();
        Ok(Self {
            model: TrainModel::from_weights(config, teacher.gguf().clone(), w, teacher.dtype()),
            vars,
            init: format!("teacher layers {}", list.join(",")),
        })
    }

    /// Random weights of `shape` (embeddings included, which then always train).
    pub fn from_shape(
        teacher: Arc<GgufFile>,
        shape: &StudentShape,
        seed: u64,
        dtype: DType,
    ) -> Result<Self> {
        let tcfg = hearth_model::config_from_gguf(&teacher)?;
        let config = shape.config(&tcfg)?;
        let tied = teacher.tensor("output.weight").is_none();
        let mut w = Weights::random(&config, tied, seed, dtype)?;
        let vars = w.make_trainable(trainable(true))?;
        Ok(Self {
            model: TrainModel::from_weights(config, teacher, w, dtype),
            vars,
            init: format!("random (seed {seed})"),
        })
    }

    /// An existing model (same tokenizer as the teacher) as the starting point.
    pub fn from_model(
        teacher: &GgufFile,
        student: Arc<GgufFile>,
        train_embeddings: bool,
        dtype: DType,
    ) -> Result<Self> {
        check_vocab(teacher, &student)?;
        let config = hearth_model::config_from_gguf(&student)?;
        let mut w = Weights::load(&student, &config, dtype)?;
        let vars = w.make_trainable(trainable(train_embeddings))?;
        let name = file_name(student.path());
        Ok(Self {
            model: TrainModel::from_weights(config, student, w, dtype),
            vars,
            init: format!("model {name}"),
        })
    }

    /// The same weights as new, independent variables (a second student from the same
    /// initialisation).
    pub fn fork(&self) -> Result<Self> {
        let names: HashSet<&str> = self.vars.iter().map(|(n, _)| n.as_str()).collect();
        let mut w = self.model.w.clone();
        let vars = w.make_trainable(|n| names.contains(n))?;
        let m = &self.model;
        Ok(Self {
            model: TrainModel::from_weights(m.config().clone(), m.gguf().clone(), w, m.dtype()),
            vars,
            init: self.init.clone(),
        })
    }

    /// The trainable variables.
    pub fn vars(&self) -> Vec<&Var> {
        self.vars.iter().map(|(_, v)| v).collect()
    }

    /// The trainable variables with their GGUF names.
    pub fn named_vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Number of trainable values.
    pub fn n_trainable(&self) -> usize {
        self.vars.iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Number of values of the whole model (a tied head counted once).
    pub fn n_params(&self) -> usize {
        let mut w = self.model.w.clone();
        w.named().iter().map(|(_, t)| t.elem_count()).sum()
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The vocabulary of a model: embedding rows and token strings.
fn vocab(f: &GgufFile) -> Result<(usize, Vec<&str>)> {
    let rows = hearth_model::config_from_gguf(f)?.vocab_size;
    let tokens = match f.get("tokenizer.ggml.tokens") {
        Some(Value::Array(v)) => v.iter().map(|t| t.as_str().unwrap_or("")).collect(),
        _ => Vec::new(),
    };
    Ok((rows, tokens))
}

/// Fails unless `student` has the teacher's vocabulary: the same embedding rows and
/// the same token strings.
pub fn check_vocab(teacher: &GgufFile, student: &GgufFile) -> Result<()> {
    let (tn, tt) = vocab(teacher)?;
    let (sn, st) = vocab(student)?;
    let names = || {
        (
            teacher.path().display().to_string(),
            student.path().display().to_string(),
        )
    };
    if tn != sn || tt.len() != st.len() {
        let (t, s) = names();
        return Err(Error::VocabMismatch {
            what: format!(
                "the teacher {t} has {tn} embedding rows and {} tokens, the student {s} has {sn} and {}",
                tt.len(),
                st.len()
            ),
        });
    }
    if let Some(i) = (0..tt.len()).find(|&i| tt[i] != st[i]) {
        let (t, s) = names();
        return Err(Error::VocabMismatch {
            what: format!(
                "both have {tn} tokens, but token {i} is {:?} in the teacher {t} and {:?} in the student {s}",
                tt[i], st[i]
            ),
        });
    }
    Ok(())
}
