//! Licence identifiers from model metadata, judged as the seed's guide does:
//! Apache-2.0 and MIT (and their permissive kin) are safe; anything else carries terms.

use serde::Serialize;

/// Whether a licence lets anyone use, change and ship the model without extra terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseVerdict {
    /// An OSI-style permissive licence (Apache-2.0, MIT, BSD, ...).
    Permissive,
    /// Use is governed by terms beyond a permissive licence (Gemma, Llama, RAIL, NC...).
    Restricted,
    /// The metadata names no licence, or one we do not know.
    Unknown,
}

impl LicenseVerdict {
    /// `permissive`, `restricted` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseVerdict::Permissive => "permissive",
            LicenseVerdict::Restricted => "restricted",
            LicenseVerdict::Unknown => "unknown",
        }
    }
}

const PERMISSIVE: &[(&str, &str)] = &[
    ("apache-2.0", "Apache-2.0"),
    ("apache 2.0", "Apache-2.0"),
    ("apache2", "Apache-2.0"),
    ("mit", "MIT"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd", "BSD"),
    ("isc", "ISC"),
    ("unlicense", "Unlicense"),
    ("cc0-1.0", "CC0-1.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("mpl-2.0", "MPL-2.0"),
];

const RESTRICTED: &[(&str, &str)] = &[
    ("gemma", "Google's Gemma Terms of Use: use restrictions and a prohibited-use policy that pass on to derivatives"),
    ("llama", "Meta's Llama community licence: acceptable-use policy, naming rules and a 700M-monthly-user limit"),
    ("openrail", "a RAIL licence: behavioural use restrictions that pass on to derivatives"),
    ("rail", "a RAIL licence: behavioural use restrictions that pass on to derivatives"),
    ("-nc", "a non-commercial licence"),
    ("non-commercial", "a non-commercial licence"),
    ("noncommercial", "a non-commercial licence"),
    ("gpl", "a copyleft licence: derivatives must be shared under the same terms"),
    ("qwen", "the Qwen licence: extra terms for large-scale commercial use"),
    ("deepseek", "the DeepSeek licence: use-based restrictions"),
    ("other", "a custom licence (`other`): read the model card"),
];

/// Judges a licence identifier as found in metadata (`general.license`).
pub fn classify(license: Option<&str>) -> (LicenseVerdict, String) {
    let Some(raw) = license.map(str::trim).filter(|s| !s.is_empty()) else {
        return (
            LicenseVerdict::Unknown,
            "the metadata names no licence: check the model card before use".into(),
        );
    };
    let id = raw.to_ascii_lowercase();
    if let Some((_, name)) = PERMISSIVE.iter().find(|(k, _)| id == *k) {
        return (
            LicenseVerdict::Permissive,
            format!("`{raw}`: {name} is permissive (use, change and ship with attribution)"),
        );
    }
    if let Some((_, why)) = RESTRICTED.iter().find(|(k, _)| id.contains(k)) {
        return (LicenseVerdict::Restricted, format!("`{raw}`: {why}"));
    }
    (
        LicenseVerdict::Unknown,
        format!("`{raw}` is not a licence we recognise: check the model card"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(classify(Some("apache-2.0")).0, LicenseVerdict::Permissive);
        assert_eq!(classify(Some("MIT")).0, LicenseVerdict::Permissive);
        let (v, why) = classify(Some("gemma"));
        assert_eq!(v, LicenseVerdict::Restricted);
        assert!(why.contains("Gemma Terms"), "{why}");
        assert_eq!(classify(Some("llama3.1")).0, LicenseVerdict::Restricted);
        assert_eq!(classify(Some("cc-by-nc-4.0")).0, LicenseVerdict::Restricted);
        assert_eq!(classify(None).0, LicenseVerdict::Unknown);
        assert_eq!(classify(Some("  ")).0, LicenseVerdict::Unknown);
        assert_eq!(classify(Some("wtfpl-ish")).0, LicenseVerdict::Unknown);
    }
}
