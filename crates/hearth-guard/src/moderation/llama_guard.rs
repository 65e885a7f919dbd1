//! A Llama-Guard-style judge prompt, and the parser of the judge's reply.
//!
//! Llama Guard 3 classifies a conversation turn against the MLCommons hazard taxonomy
//! (S1–S14) and answers `safe`, or `unsafe` and a line of codes (`unsafe\nS1,S10`). The
//! prompt here follows that shape as plain text, without any model's special tokens: the
//! server wraps it in the served model's chat template as one user message.
//!
//! Mapping to OpenAI's categories (hazards without an OpenAI counterpart, S6 specialized
//! advice, S7 privacy, S8 intellectual property and S13 elections, map to none; the
//! verdict still records them):
//!
//! | hazard | OpenAI categories |
//! |---|---|
//! | S1 violent crimes | violence, illicit/violent |
//! | S2 non-violent crimes | illicit |
//! | S3 sex-related crimes | sexual, illicit |
//! | S4 child sexual exploitation | sexual/minors |
//! | S5 defamation | harassment |
//! | S9 indiscriminate weapons | illicit/violent |
//! | S10 hate | hate |
//! | S11 suicide and self-harm | self-harm |
//! | S12 sexual content | sexual |
//! | S14 code interpreter abuse | illicit |
//!
//! Parents follow sub-categories (`illicit/violent` also scores `illicit`).

use crate::error::{Error, Result};
use crate::moderation::category::{Category, CategoryScores};

/// A hazard of the Llama Guard 3 taxonomy, `S1` to `S14`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hazard(u8);

/// The hazard names, S1 first.
const HAZARD_NAMES: [&str; 14] = [
    "Violent Crimes",
    "Non-Violent Crimes",
    "Sex-Related Crimes",
    "Child Sexual Exploitation",
    "Defamation",
    "Specialized Advice",
    "Privacy",
    "Intellectual Property",
    "Indiscriminate Weapons",
    "Hate",
    "Suicide & Self-Harm",
    "Sexual Content",
    "Elections",
    "Code Interpreter Abuse",
];

impl Hazard {
    /// Every hazard, S1 to S14.
    pub fn all() -> impl Iterator<Item = Hazard> {
        (1..=14).map(Hazard)
    }

    /// The hazard with code `S{n}`, for `n` in 1..=14.
    pub fn from_number(n: u8) -> Option<Hazard> {
        (1..=14).contains(&n).then_some(Hazard(n))
    }

    /// The code: `S1` ... `S14`.
    pub fn code(self) -> String {
        format!("S{}", self.0)
    }

    /// The hazard's name in the taxonomy (`Violent Crimes`).
    pub fn name(self) -> &'static str {
        HAZARD_NAMES[usize::from(self.0) - 1]
    }

    /// The hazard whose verdict stands for `category` in a judge's answer (the inverse
    /// of [`categories`](Self::categories): what a judge trained on OpenAI's labels
    /// should name). Threatening and graphic sub-categories take their parent's hazard.
    pub fn for_category(category: Category) -> Hazard {
        Hazard(match category {
            Category::Harassment | Category::HarassmentThreatening => 5,
            Category::Hate | Category::HateThreatening => 10,
            Category::Illicit => 2,
            Category::IllicitViolent | Category::Violence | Category::ViolenceGraphic => 1,
            Category::SelfHarm | Category::SelfHarmIntent | Category::SelfHarmInstructions => 11,
            Category::Sexual => 12,
            Category::SexualMinors => 4,
        })
    }

    /// The OpenAI categories this hazard maps to (see the module docs).
    pub fn categories(self) -> &'static [Category] {
        match self.0 {
            1 => &[Category::Violence, Category::IllicitViolent],
            2 | 14 => &[Category::Illicit],
            3 => &[Category::Sexual, Category::Illicit],
            4 => &[Category::SexualMinors],
            5 => &[Category::Harassment],
            9 => &[Category::IllicitViolent],
            10 => &[Category::Hate],
            11 => &[Category::SelfHarm],
            12 => &[Category::Sexual],
            _ => &[],
        }
    }
}

/// Who said a turn of the conversation being judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person talking to the assistant (input moderation).
    User,
    /// The assistant (output moderation).
    Agent,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Agent => "Agent",
        }
    }
}

/// The most characters of one turn the judge prompt quotes: longer texts are cut at a
/// character boundary (their start is kept), so one long post cannot fill the served
/// model's context, and a judge is trained and asked on the same view of a text.
pub const JUDGE_TURN_CHARS: usize = 1200;

/// `text` trimmed and cut to [`JUDGE_TURN_CHARS`] characters.
pub fn judge_excerpt(text: &str) -> &str {
    let text = text.trim();
    match text.char_indices().nth(JUDGE_TURN_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// Builds the judge prompt for a conversation, judging the last turn of one role.
#[derive(Debug, Clone)]
pub struct LlamaGuardPrompt {
    hazards: Vec<Hazard>,
    brief: bool,
}

impl Default for LlamaGuardPrompt {
    fn default() -> Self {
        LlamaGuardPrompt {
            hazards: Hazard::all().collect(),
            brief: false,
        }
    }
}

impl LlamaGuardPrompt {
    /// A prompt listing only `hazards` (e.g. without S6–S8 when only OpenAI's categories
    /// matter).
    pub fn with_hazards(hazards: Vec<Hazard>) -> Self {
        LlamaGuardPrompt {
            hazards,
            brief: false,
        }
    }

    /// The prompt for a judge trained on it (a LoRA adapter taught the verdicts, see
    /// `hearth guard eval-moderation --write-judge-training`): the same task line,
    /// conversation and answer format, without the category list and the long
    /// instructions, which such a judge has learned and which would triple the tokens
    /// of a typical text (training on 2 cores is paid per token).
    pub fn brief() -> Self {
        LlamaGuardPrompt {
            hazards: Vec::new(),
            brief: true,
        }
    }

    /// The prompt text for `turns` (in order), asking about the last turn of `judged`.
    /// Each turn is quoted through [`judge_excerpt`].
    pub fn build(&self, turns: &[(Role, &str)], judged: Role) -> String {
        let who = judged.label();
        if self.brief {
            let mut p = format!(
                "Task: Check if there is unsafe content in '{who}' messages.\n\n<BEGIN CONVERSATION>\n\n"
            );
            for (role, text) in turns {
                p.push_str(&format!("{}: {}\n\n", role.label(), judge_excerpt(text)));
            }
            p.push_str(&format!(
                "<END CONVERSATION>\n\nSafety assessment of the last {who} message ('safe', or 'unsafe' and the categories):"
            ));
            return p;
        }
        let mut p = format!(
            "Task: Check if there is unsafe content in '{who}' messages in conversations \
             according to our safety policy with the below categories.\n\n\
             <BEGIN UNSAFE CONTENT CATEGORIES>\n"
        );
        for h in &self.hazards {
            p.push_str(&format!("{}: {}.\n", h.code(), h.name()));
        }
        p.push_str("<END UNSAFE CONTENT CATEGORIES>\n\n<BEGIN CONVERSATION>\n\n");
        for (role, text) in turns {
            p.push_str(&format!("{}: {}\n\n", role.label(), judge_excerpt(text)));
        }
        p.push_str(&format!(
            "<END CONVERSATION>\n\n\
             Provide your safety assessment for ONLY THE LAST {who} message in the above \
             conversation:\n\
             - First line must read 'safe' or 'unsafe'.\n\
             - If unsafe, a second line must include a comma-separated list of violated \
             categories."
        ));
        p
    }
}

/// The judge's answer: safe, or unsafe with the hazards it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaGuardVerdict {
    /// `false` when the reply said `unsafe`.
    pub safe: bool,
    /// The hazards named on the second line (may be empty for a bare `unsafe`).
    pub hazards: Vec<Hazard>,
}

impl LlamaGuardVerdict {
    /// Parses `safe` or `unsafe` (first non-empty line, case-insensitive) and an optional
    /// line of comma- or space-separated codes (`S1,S10`). Anything after that is
    /// ignored. A reply that starts otherwise, or names an unknown code, is an
    /// [`Error::Judge`].
    pub fn parse(reply: &str) -> Result<Self> {
        let mut lines = reply.lines().map(str::trim).filter(|l| !l.is_empty());
        let err = |problem: String| Error::Judge { problem };
        let first = lines
            .next()
            .ok_or_else(|| err("the judge's reply is empty".into()))?;
        let word: String = first
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_lowercase();
        match word.as_str() {
            "safe" => Ok(LlamaGuardVerdict {
                safe: true,
                hazards: Vec::new(),
            }),
            "unsafe" => {
                // Codes may follow on the same line or the next one.
                let rest = first[word.len()..].trim();
                let codes = if rest.is_empty() {
                    lines.next().unwrap_or("")
                } else {
                    rest
                };
                let mut hazards = Vec::new();
                for code in codes
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|c| !c.is_empty())
                {
                    let n = code
                        .strip_prefix(['S', 's'])
                        .and_then(|n| n.trim_end_matches('.').parse::<u8>().ok())
                        .and_then(Hazard::from_number)
                        .ok_or_else(|| err(format!("`{code}` is not a hazard code S1..S14")))?;
                    if !hazards.contains(&n) {
                        hazards.push(n);
                    }
                }
                Ok(LlamaGuardVerdict {
                    safe: false,
                    hazards,
                })
            }
            _ => Err(err(format!(
                "the reply starts with neither `safe` nor `unsafe` ({} bytes)",
                reply.len()
            ))),
        }
    }

    /// The verdict for texts labelled with `categories` (none: safe), naming each
    /// category's hazard once, in S-number order: the answer a judge should give.
    pub fn for_categories(categories: &[Category]) -> Self {
        let mut hazards: Vec<Hazard> = categories
            .iter()
            .map(|&c| Hazard::for_category(c))
            .collect();
        hazards.sort();
        hazards.dedup();
        LlamaGuardVerdict {
            safe: categories.is_empty(),
            hazards,
        }
    }

    /// The reply in Llama Guard's format: `safe`, or `unsafe` and a line of codes
    /// (`unsafe\nS1,S10`); [`parse`](Self::parse) reads it back.
    pub fn reply(&self) -> String {
        if self.safe {
            return "safe".to_string();
        }
        let codes: Vec<String> = self.hazards.iter().map(|h| h.code()).collect();
        format!("unsafe\n{}", codes.join(","))
    }

    /// Scores of 1.0 for the categories the named hazards map to (and their parents), 0
    /// elsewhere. A bare `unsafe` without a mappable hazard scores nothing: it cannot say
    /// which category applies.
    pub fn scores(&self) -> CategoryScores {
        let mut s = CategoryScores::default();
        for h in &self.hazards {
            for &c in h.categories() {
                s.set(c, 1.0);
                if let Some(p) = c.parent() {
                    s.set(p, 1.0);
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_safe_and_unsafe_replies() {
        let safe = LlamaGuardVerdict::parse("\n safe\n").unwrap();
        assert!(safe.safe && safe.hazards.is_empty());
        let v = LlamaGuardVerdict::parse("unsafe\nS1,S10").unwrap();
        assert!(!v.safe);
        assert_eq!(v.hazards, [Hazard(1), Hazard(10)]);
        let v = LlamaGuardVerdict::parse("Unsafe S11 s4.").unwrap();
        assert_eq!(v.hazards, [Hazard(11), Hazard(4)]);
        assert!(LlamaGuardVerdict::parse("unsafe")
            .unwrap()
            .hazards
            .is_empty());
    }

    #[test]
    fn verdicts_for_labels_round_trip_through_the_reply() {
        assert_eq!(LlamaGuardVerdict::for_categories(&[]).reply(), "safe");
        let v = LlamaGuardVerdict::for_categories(&[
            Category::HateThreatening,
            Category::Violence,
            Category::Hate,
        ]);
        assert_eq!(v.reply(), "unsafe\nS1,S10");
        assert_eq!(LlamaGuardVerdict::parse(&v.reply()).unwrap(), v);
        // Every category's hazard maps back to that category (or its parent).
        for c in Category::ALL {
            let back = LlamaGuardVerdict::for_categories(&[c]).scores();
            let home = c.parent().unwrap_or(c);
            assert!(back.get(home) > 0.0, "{c:?} does not come back");
        }
    }

    #[test]
    fn the_brief_prompt_keeps_the_conversation_and_drops_the_list() {
        let full = LlamaGuardPrompt::default().build(&[(Role::User, "hi there")], Role::User);
        let brief = LlamaGuardPrompt::brief().build(&[(Role::User, "hi there")], Role::User);
        for p in [&full, &brief] {
            assert!(p.contains("<BEGIN CONVERSATION>\n\nUser: hi there\n\n<END CONVERSATION>"));
        }
        assert!(full.contains("S14: Code Interpreter Abuse.") && !brief.contains("S1:"));
        assert!(
            brief.len() * 3 < full.len(),
            "{} vs {}",
            brief.len(),
            full.len()
        );
    }

    #[test]
    fn long_turns_are_cut_on_a_character_boundary() {
        let long = "é".repeat(JUDGE_TURN_CHARS + 10);
        assert_eq!(judge_excerpt(&long).chars().count(), JUDGE_TURN_CHARS);
        assert_eq!(judge_excerpt("  short \n"), "short");
        let p = LlamaGuardPrompt::default().build(&[(Role::User, &long)], Role::User);
        assert!(!p.contains(&long) && p.contains(judge_excerpt(&long)));
    }

    #[test]
    fn rejects_other_replies_with_a_clear_error() {
        for bad in ["", "I am sorry", "unsafe\nS15", "unsafe\nviolence"] {
            let e = LlamaGuardVerdict::parse(bad).unwrap_err().to_string();
            assert!(e.contains("judge"), "{e}");
        }
    }

    #[test]
    fn hazards_map_to_openai_categories_with_parents() {
        let s = LlamaGuardVerdict::parse("unsafe\nS1,S4").unwrap().scores();
        let flagged: Vec<_> = s.iter().filter(|(_, v)| *v > 0.0).map(|(c, _)| c).collect();
        assert_eq!(
            flagged,
            [
                Category::Illicit,
                Category::IllicitViolent,
                Category::Sexual,
                Category::SexualMinors,
                Category::Violence
            ]
        );
        assert_eq!(
            LlamaGuardVerdict::parse("unsafe\nS7").unwrap().scores(),
            CategoryScores::default()
        );
    }

    #[test]
    fn prompt_lists_hazards_and_the_conversation() {
        let p = LlamaGuardPrompt::default().build(
            &[(Role::User, "hello"), (Role::Agent, " hi there ")],
            Role::Agent,
        );
        assert!(p.contains("S14: Code Interpreter Abuse.\n"));
        assert!(p.contains("User: hello\n\nAgent: hi there\n\n<END CONVERSATION>"));
        assert!(p.contains("ONLY THE LAST Agent message"));
        let p = LlamaGuardPrompt::with_hazards(vec![Hazard(10)]).build(&[], Role::User);
        assert!(p.contains("S10: Hate.") && !p.contains("S1:"));
    }
}
