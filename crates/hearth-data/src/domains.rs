//! Domain classification by keyword and phrase lists: all lists matched in one pass with
//! Aho-Corasick, scores normalised by length (distinct-position hits per 100 words, a CJK
//! character counting as a word), several domains per document allowed.
//!
//! Built-in starter lists (English and Chinese) cover medical, legal, finance, code and
//! education; a TOML file can replace them:
//!
//! ```toml
//! min_score = 1.0      # hits per 100 words
//! min_distinct = 2     # distinct keywords that must match
//! [domains.medical]
//! keywords = ["patient", "diagnosis", "患者"]
//! ```

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::error::{Error, Result};

/// Keyword lists per domain and the bar a document must clear, as read from a file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Minimum score (keyword hits per 100 words) for a domain label.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// Minimum number of distinct keywords of the domain found in the document.
    #[serde(default = "default_min_distinct")]
    pub min_distinct: usize,
    /// Domain name → its keywords and phrases (matched case-insensitively for ASCII, on
    /// word boundaries for alphanumeric ASCII keywords).
    pub domains: BTreeMap<String, DomainList>,
}

/// One domain's keywords.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainList {
    /// Keywords and phrases.
    pub keywords: Vec<String>,
}

fn default_min_score() -> f64 {
    1.0
}
fn default_min_distinct() -> usize {
    2
}

const BUILTIN: &[(&str, &[&str])] = &[
    (
        "medical",
        &[
            "patient",
            "patients",
            "diagnosis",
            "symptoms",
            "treatment",
            "clinical",
            "disease",
            "hospital",
            "physician",
            "dose",
            "therapy",
            "surgery",
            "infection",
            "chronic",
            "prescription",
            "vaccine",
            "blood pressure",
            "medication",
            "nurse",
            "tumor",
            "患者",
            "诊断",
            "症状",
            "治疗",
            "临床",
            "疾病",
            "医院",
            "医生",
            "药物",
            "手术",
            "感染",
            "疫苗",
        ],
    ),
    (
        "legal",
        &[
            "court",
            "plaintiff",
            "defendant",
            "statute",
            "contract",
            "liability",
            "attorney",
            "lawsuit",
            "jurisdiction",
            "judge",
            "verdict",
            "appeal",
            "tort",
            "legislation",
            "regulation",
            "clause",
            "breach",
            "litigation",
            "pursuant",
            "hereby",
            "法院",
            "原告",
            "被告",
            "合同",
            "法律",
            "诉讼",
            "判决",
            "律师",
            "条款",
            "违约",
            "法规",
            "上诉",
        ],
    ),
    (
        "finance",
        &[
            "stock",
            "stocks",
            "investment",
            "investor",
            "revenue",
            "interest rate",
            "inflation",
            "portfolio",
            "dividend",
            "equity",
            "bond",
            "bonds",
            "earnings",
            "fiscal",
            "bank",
            "loan",
            "credit",
            "market",
            "shares",
            "hedge",
            "股票",
            "投资",
            "收益",
            "利率",
            "通货膨胀",
            "银行",
            "贷款",
            "股息",
            "债券",
            "财务",
            "市场",
            "基金",
        ],
    ),
    (
        "code",
        &[
            "function",
            "variable",
            "compile",
            "compiler",
            "return",
            "class",
            "import",
            "def",
            "int",
            "string",
            "array",
            "null",
            "struct",
            "git",
            "api",
            "bug",
            "debug",
            "python",
            "javascript",
            "rust",
            "函数",
            "变量",
            "编译",
            "代码",
            "程序",
            "数组",
            "接口",
            "调试",
            "算法",
            "字符串",
        ],
    ),
    (
        "education",
        &[
            "student",
            "students",
            "teacher",
            "teachers",
            "school",
            "curriculum",
            "classroom",
            "lesson",
            "exam",
            "homework",
            "university",
            "learning",
            "course",
            "grade",
            "education",
            "lecture",
            "tuition",
            "syllabus",
            "pupils",
            "semester",
            "学生",
            "老师",
            "教师",
            "学校",
            "课程",
            "教育",
            "考试",
            "作业",
            "大学",
            "课堂",
            "学习",
            "教学",
        ],
    ),
];

impl DomainConfig {
    /// The built-in English and Chinese starter lists.
    pub fn builtin() -> DomainConfig {
        DomainConfig {
            min_score: default_min_score(),
            min_distinct: default_min_distinct(),
            domains: BUILTIN
                .iter()
                .map(|(name, words)| {
                    let keywords = words.iter().map(|w| w.to_string()).collect();
                    (name.to_string(), DomainList { keywords })
                })
                .collect(),
        }
    }

    /// Reads a TOML domain file.
    pub fn from_toml(text: &str, path: &std::path::Path) -> Result<DomainConfig> {
        toml::from_str(text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            what: e.to_string(),
        })
    }
}

/// A compiled classifier.
#[derive(Debug, Clone)]
pub struct DomainClassifier {
    ac: AhoCorasick,
    /// For each pattern: (domain index, whether it needs word boundaries).
    patterns: Vec<(usize, bool)>,
    names: Vec<String>,
    min_score: f64,
    min_distinct: usize,
}

/// A document's score in one domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DomainScore {
    /// Domain name.
    pub domain: String,
    /// Keyword hits per 100 words.
    pub score: f64,
    /// Distinct keywords found.
    pub distinct: usize,
}

impl DomainClassifier {
    /// Compiles the lists of `cfg` into one automaton.
    pub fn new(cfg: &DomainConfig) -> Result<DomainClassifier> {
        let mut words = Vec::new();
        let mut patterns = Vec::new();
        let names: Vec<String> = cfg.domains.keys().cloned().collect();
        for (d, list) in cfg.domains.values().enumerate() {
            for k in &list.keywords {
                let k = k.trim();
                if k.is_empty() {
                    continue;
                }
                let bounded = k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
                words.push(k.to_string());
                patterns.push((d, bounded));
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| Error::Param {
                name: "domains",
                what: format!("cannot build the keyword matcher: {e}"),
            })?;
        Ok(DomainClassifier {
            ac,
            patterns,
            names,
            min_score: cfg.min_score,
            min_distinct: cfg.min_distinct,
        })
    }

    /// The domain names, sorted.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Every domain's score for `text`, in name order.
    pub fn scores(&self, text: &str) -> Vec<DomainScore> {
        let bytes = text.as_bytes();
        let mut hits = vec![0usize; self.names.len()];
        let mut distinct: Vec<std::collections::BTreeSet<usize>> =
            vec![Default::default(); self.names.len()];
        for m in self.ac.find_overlapping_iter(text) {
            let (d, bounded) = self.patterns[m.pattern().as_usize()];
            if bounded {
                let before = m.start().checked_sub(1).map(|i| bytes[i]);
                let after = bytes.get(m.end()).copied();
                let word_char =
                    |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
                if word_char(before) || word_char(after) {
                    continue;
                }
            }
            hits[d] += 1;
            distinct[d].insert(m.pattern().as_usize());
        }
        let words = length_in_words(text).max(1) as f64;
        self.names
            .iter()
            .enumerate()
            .map(|(d, name)| DomainScore {
                domain: name.clone(),
                score: hits[d] as f64 * 100.0 / words,
                distinct: distinct[d].len(),
            })
            .collect()
    }

    /// The domains `text` belongs to (score and distinct keywords at or above the bars),
    /// highest score first.
    pub fn labels(&self, text: &str) -> Vec<DomainScore> {
        let mut l: Vec<DomainScore> = self
            .scores(text)
            .into_iter()
            .filter(|s| s.score >= self.min_score && s.distinct >= self.min_distinct)
            .collect();
        l.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.domain.cmp(&b.domain))
        });
        l
    }
}

/// Whitespace-separated words, with each CJK character counted as a word.
fn length_in_words(text: &str) -> usize {
    text.split_whitespace()
        .map(|w| {
            let cjk = w.chars().filter(|&c| is_cjk(c)).count();
            let rest = w.chars().any(|c| !is_cjk(c));
            cjk + usize::from(rest)
        })
        .sum()
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x3040..=0x30FF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Vec<String> {
        let c = DomainClassifier::new(&DomainConfig::builtin()).unwrap();
        c.labels(text).into_iter().map(|s| s.domain).collect()
    }

    #[test]
    fn english_and_chinese_texts_get_their_domains() {
        assert_eq!(
            labels("The patient was admitted to hospital; the diagnosis guided the treatment."),
            vec!["medical"]
        );
        assert_eq!(
            labels("患者在医院接受治疗，医生给出诊断。"),
            vec!["medical"]
        );
        assert_eq!(
            labels("The court found the defendant liable for breach of contract."),
            vec!["legal"]
        );
        assert_eq!(
            labels("学生在学校参加考试，老师批改作业。"),
            vec!["education"]
        );
        assert!(labels("We walked along the beach and watched the sunset.").is_empty());
    }

    #[test]
    fn several_domains_and_word_boundaries() {
        let both = labels(
            "The hospital billed the patient after surgery; the patient sued in court, \
             and the judge ruled the contract void.",
        );
        assert_eq!(both.len(), 2, "{both:?}");
        // "bank" inside "embankment" and "court" inside "courtyard" are not keywords.
        assert!(
            labels("The embankment by the courtyard, the courtyards and embankments.").is_empty()
        );
    }

    #[test]
    fn scores_are_normalised_by_length() {
        let c = DomainClassifier::new(&DomainConfig::builtin()).unwrap();
        let short = "The patient needs treatment.";
        let long = format!(
            "{short} {}",
            "We walked along the beach at sunset. ".repeat(20)
        );
        let med = |t: &str| {
            c.scores(t)
                .into_iter()
                .find(|s| s.domain == "medical")
                .unwrap()
        };
        assert_eq!(med(short).distinct, med(&long).distinct);
        assert!(med(short).score > 10.0 * med(&long).score);
    }

    #[test]
    fn config_files_parse_and_reject_unknown_fields() {
        let p = std::path::Path::new("d.toml");
        let cfg = DomainConfig::from_toml(
            "min_score = 0.5\n[domains.cooking]\nkeywords = [\"recipe\", \"oven\", \"烤箱\"]\n",
            p,
        )
        .unwrap();
        assert_eq!(cfg.min_distinct, 2);
        let c = DomainClassifier::new(&cfg).unwrap();
        assert_eq!(
            c.labels("Preheat the oven and follow the recipe.")[0].domain,
            "cooking"
        );
        let err = DomainConfig::from_toml("min_scor = 1\n[domains]\n", p).unwrap_err();
        assert!(err.to_string().contains("d.toml"), "{err}");
    }
}
