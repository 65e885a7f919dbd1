//! OpenAI moderation's categories, and per-category scores, flags and thresholds.

use std::fmt;

/// A content category, named exactly as OpenAI's moderation API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `harassment`: harassing language towards any target.
    Harassment,
    /// `harassment/threatening`: harassment that also threatens violence or serious harm.
    HarassmentThreatening,
    /// `hate`: hatred based on a protected attribute (race, religion, gender, ...).
    Hate,
    /// `hate/threatening`: hateful content that also threatens violence or serious harm.
    HateThreatening,
    /// `illicit`: advice or instructions for committing wrongdoing.
    Illicit,
    /// `illicit/violent`: illicit content that also involves violence or weapons.
    IllicitViolent,
    /// `self-harm`: content that promotes or depicts acts of self-harm.
    SelfHarm,
    /// `self-harm/intent`: the speaker says they intend to harm themselves.
    SelfHarmIntent,
    /// `self-harm/instructions`: instructions or advice for self-harm.
    SelfHarmInstructions,
    /// `sexual`: content meant to arouse, or promoting sexual services.
    Sexual,
    /// `sexual/minors`: sexual content that involves anyone under 18.
    SexualMinors,
    /// `violence`: content that depicts death, violence or physical injury.
    Violence,
    /// `violence/graphic`: violence depicted in graphic detail.
    ViolenceGraphic,
}

/// How many categories there are.
pub const CATEGORY_COUNT: usize = 13;

impl Category {
    /// Every category, in OpenAI's order (the order of [`index`](Self::index)).
    pub const ALL: [Category; CATEGORY_COUNT] = [
        Category::Harassment,
        Category::HarassmentThreatening,
        Category::Hate,
        Category::HateThreatening,
        Category::Illicit,
        Category::IllicitViolent,
        Category::SelfHarm,
        Category::SelfHarmIntent,
        Category::SelfHarmInstructions,
        Category::Sexual,
        Category::SexualMinors,
        Category::Violence,
        Category::ViolenceGraphic,
    ];

    /// The wire name: `harassment/threatening`, `self-harm/intent`, ...
    pub fn name(self) -> &'static str {
        match self {
            Category::Harassment => "harassment",
            Category::HarassmentThreatening => "harassment/threatening",
            Category::Hate => "hate",
            Category::HateThreatening => "hate/threatening",
            Category::Illicit => "illicit",
            Category::IllicitViolent => "illicit/violent",
            Category::SelfHarm => "self-harm",
            Category::SelfHarmIntent => "self-harm/intent",
            Category::SelfHarmInstructions => "self-harm/instructions",
            Category::Sexual => "sexual",
            Category::SexualMinors => "sexual/minors",
            Category::Violence => "violence",
            Category::ViolenceGraphic => "violence/graphic",
        }
    }

    /// The category whose [`name`](Self::name) is `name` (exact, lower case).
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The position of this category in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The top-level category of a sub-category (`hate/threatening` → `hate`); `None`
    /// for a top-level category.
    pub fn parent(self) -> Option<Category> {
        match self {
            Category::HarassmentThreatening => Some(Category::Harassment),
            Category::HateThreatening => Some(Category::Hate),
            Category::IllicitViolent => Some(Category::Illicit),
            Category::SelfHarmIntent | Category::SelfHarmInstructions => Some(Category::SelfHarm),
            Category::SexualMinors => Some(Category::Sexual),
            Category::ViolenceGraphic => Some(Category::Violence),
            _ => None,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One score in `0..=1` per category.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CategoryScores([f32; CATEGORY_COUNT]);

impl CategoryScores {
    /// The score of `category`.
    pub fn get(&self, category: Category) -> f32 {
        self.0[category.index()]
    }

    /// Sets the score of `category`, clamped to `0..=1` (NaN becomes 0).
    pub fn set(&mut self, category: Category, score: f32) {
        self.0[category.index()] = if score.is_nan() {
            0.0
        } else {
            score.clamp(0.0, 1.0)
        };
    }

    /// Every category with its score, in [`Category::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Category, f32)> + '_ {
        Category::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    /// The highest-scored category and its score.
    pub fn top(&self) -> (Category, f32) {
        self.iter()
            .fold((Category::Harassment, f32::MIN), |best, (c, s)| {
                if s > best.1 {
                    (c, s)
                } else {
                    best
                }
            })
    }
}

/// A flagging threshold per category: a category is flagged when its score is at least
/// its threshold. Default 0.5 everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds([f32; CATEGORY_COUNT]);

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::uniform(0.5)
    }
}

impl Thresholds {
    /// The same threshold for every category.
    pub fn uniform(threshold: f32) -> Self {
        Thresholds([threshold; CATEGORY_COUNT])
    }

    /// These thresholds with `category`'s set to `threshold`.
    pub fn with(mut self, category: Category, threshold: f32) -> Self {
        self.0[category.index()] = threshold;
        self
    }

    /// The threshold of `category`.
    pub fn get(&self, category: Category) -> f32 {
        self.0[category.index()]
    }

    /// Which categories `scores` flags.
    pub fn flags(&self, scores: &CategoryScores) -> CategoryFlags {
        let mut flags = CategoryFlags::default();
        for (c, s) in scores.iter() {
            flags.0[c.index()] = s >= self.get(c);
        }
        flags
    }
}

/// One flag per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CategoryFlags([bool; CATEGORY_COUNT]);

impl CategoryFlags {
    /// Whether `category` is flagged.
    pub fn get(&self, category: Category) -> bool {
        self.0[category.index()]
    }

    /// Sets the flag of `category`.
    pub fn set(&mut self, category: Category, flagged: bool) {
        self.0[category.index()] = flagged;
    }

    /// Whether any category is flagged.
    pub fn any(&self) -> bool {
        self.0.iter().any(|&f| f)
    }

    /// Every category with its flag, in [`Category::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Category, bool)> + '_ {
        Category::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    /// The flagged categories, in [`Category::ALL`] order.
    pub fn flagged(&self) -> impl Iterator<Item = Category> + '_ {
        self.iter().filter(|(_, f)| *f).map(|(c, _)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_openai() {
        for c in Category::ALL {
            assert_eq!(Category::from_name(c.name()), Some(c));
            assert_eq!(Category::ALL[c.index()], c);
        }
        assert_eq!(
            Category::SelfHarmInstructions.name(),
            "self-harm/instructions"
        );
        assert_eq!(Category::from_name("Hate"), None);
    }

    #[test]
    fn parents_are_top_level_prefixes() {
        for c in Category::ALL {
            match c.parent() {
                Some(p) => {
                    assert!(c.name().starts_with(&format!("{}/", p.name())));
                    assert_eq!(p.parent(), None);
                }
                None => assert!(!c.name().contains('/')),
            }
        }
    }

    #[test]
    fn thresholds_flag_at_or_above() {
        let mut s = CategoryScores::default();
        s.set(Category::Hate, 0.5);
        s.set(Category::Sexual, 0.49);
        s.set(Category::Violence, 7.0);
        assert_eq!(s.get(Category::Violence), 1.0);
        let flags = Thresholds::default().flags(&s);
        assert_eq!(
            flags.flagged().collect::<Vec<_>>(),
            [Category::Hate, Category::Violence]
        );
        let flags = Thresholds::default().with(Category::Hate, 0.6).flags(&s);
        assert!(!flags.get(Category::Hate));
        assert_eq!(s.top(), (Category::Violence, 1.0));
    }
}
