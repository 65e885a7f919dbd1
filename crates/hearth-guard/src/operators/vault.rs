//! The pseudonym vault: pseudonyms out, originals kept encrypted, re-identification back.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::finding::PiiKind;

/// Maps pseudonyms (`<EMAIL_3f9a1c2e>`) to their originals, which it holds only
/// encrypted (ChaCha20-Poly1305 under a key derived from the caller's 32-byte key).
///
/// Pseudonyms and nonces are derived from the value with HMAC-SHA256 under separate
/// derived keys (a synthetic-IV construction): the same value always gets the same
/// pseudonym and ciphertext under one key, so a conversation stays consistent across
/// messages, and no random number generator is needed. Equal values are thus linkable
/// to whoever sees the vault, which the pseudonym already reveals.
pub struct Vault {
    cipher: ChaCha20Poly1305,
    name_key: [u8; 32],
    sealed: HashMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("entries", &self.sealed.len())
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

const NONCE_LEN: usize = 12;

impl Vault {
    /// An empty vault under `key` (keep the key secret; anyone with it reads the vault).
    pub fn new(key: &[u8; 32]) -> Self {
        let enc_key = hmac(key, &[b"hearth-guard vault: encryption key"]);
        let name_key = hmac(key, &[b"hearth-guard vault: pseudonym key"]);
        Vault {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&enc_key)),
            name_key,
            sealed: HashMap::new(),
        }
    }

    /// A vault under `key` holding entries saved earlier with [`entries`](Self::entries).
    /// Entries are checked when used, by [`reidentify`](Self::reidentify).
    pub fn from_entries(
        key: &[u8; 32],
        entries: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Self {
        let mut vault = Vault::new(key);
        vault.sealed.extend(entries);
        vault
    }

    /// The stored entries: pseudonym and sealed original (nonce ‖ ciphertext ‖ tag).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.sealed.iter().map(|(p, s)| (p.as_str(), s.as_slice()))
    }

    /// How many distinct values the vault holds.
    pub fn len(&self) -> usize {
        self.sealed.len()
    }

    /// True when the vault holds nothing.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty()
    }

    /// The pseudonym for `value` of `kind`, storing the encrypted original.
    pub fn pseudonym(&mut self, kind: PiiKind, value: &str) -> Result<String> {
        let tag = hmac(
            &self.name_key,
            &[kind.label().as_bytes(), &[0], value.as_bytes()],
        );
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        // Eight hex digits, lengthened only if another value already holds them.
        for len in (8..=64).step_by(4) {
            let pseudonym = format!("<{}_{}>", kind.label(), &hex[..len]);
            match self.sealed.get(&pseudonym) {
                Some(sealed) if self.open(&pseudonym, sealed)? == value => return Ok(pseudonym),
                Some(_) => continue,
                None => {
                    let sealed = self.seal(&pseudonym, &tag, value)?;
                    self.sealed.insert(pseudonym.clone(), sealed);
                    return Ok(pseudonym);
                }
            }
        }
        Err(Error::Encrypt) // 256-bit HMAC collision: not reachable in practice
    }

    fn seal(&self, pseudonym: &str, tag: &[u8; 32], value: &str) -> Result<Vec<u8>> {
        let nonce = hmac(&self.name_key, &[b"nonce", tag]);
        let nonce = &nonce[..NONCE_LEN];
        let payload = Payload {
            msg: value.as_bytes(),
            aad: pseudonym.as_bytes(),
        };
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| Error::Encrypt)?;
        Ok([nonce, &ciphertext].concat())
    }

    fn open(&self, pseudonym: &str, sealed: &[u8]) -> Result<String> {
        let fail = || Error::Decrypt {
            pseudonym: pseudonym.to_string(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: pseudonym.as_bytes(),
        };
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }

    /// `text` with every pseudonym this vault knows replaced by its original; other text,
    /// unknown pseudonyms included, is left as it is.
    pub fn reidentify(&self, text: &str) -> Result<String> {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for open in memchr::memchr_iter(b'<', bytes) {
            if open < copied {
                continue;
            }
            let limit = bytes.len().min(open + 96);
            let Some(close) = memchr::memchr(b'>', &bytes[open + 1..limit]).map(|i| open + 1 + i)
            else {
                continue;
            };
            let candidate = &text[open..=close];
            if let Some(sealed) = self.sealed.get(candidate) {
                out.push_str(&text[copied..open]);
                out.push_str(&self.open(candidate, sealed)?);
                copied = close + 1;
            }
        }
        out.push_str(&text[copied..]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Anonymizer, Operator, Scanner};

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trip_is_exact() {
        let text =
            "Hi, I'm at a@x.com / 13812345678; id 11010519491231002X, again a@x.com. <b>ok</b>";
        let mut vault = Vault::new(&KEY);
        let findings = Scanner::new().scan(text);
        let anon = Anonymizer::new(Operator::Pseudonymize);
        let masked = anon
            .anonymize(text, &findings, Some(&mut vault))
            .unwrap_or_default();
        assert!(
            !masked.contains("a@x.com") && !masked.contains("13812345678"),
            "{masked}"
        );
        assert_eq!(vault.len(), 3);
        assert_eq!(vault.reidentify(&masked).ok().as_deref(), Some(text));
        // A reply quoting the pseudonyms in another order comes back with the originals.
        let p = vault
            .pseudonym(PiiKind::Email, "a@x.com")
            .unwrap_or_default();
        let reply = format!("Sure, I'll write to {p}.");
        assert_eq!(
            vault.reidentify(&reply).ok().as_deref(),
            Some("Sure, I'll write to a@x.com.")
        );
    }

    #[test]
    fn same_value_same_pseudonym_other_key_other_pseudonym() {
        let mut a = Vault::new(&KEY);
        let mut b = Vault::new(&[8; 32]);
        let pa = a
            .pseudonym(PiiKind::Phone, "13812345678")
            .unwrap_or_default();
        assert_eq!(
            Some(pa.clone()),
            a.pseudonym(PiiKind::Phone, "13812345678").ok()
        );
        assert_ne!(Some(pa), b.pseudonym(PiiKind::Phone, "13812345678").ok());
    }

    #[test]
    fn entries_persist_and_wrong_key_fails() {
        let mut a = Vault::new(&KEY);
        let p = a.pseudonym(PiiKind::Email, "a@x.com").unwrap_or_default();
        let saved: Vec<(String, Vec<u8>)> = a
            .entries()
            .map(|(p, s)| (p.to_string(), s.to_vec()))
            .collect();
        let restored = Vault::from_entries(&KEY, saved.clone());
        assert_eq!(restored.reidentify(&p).ok().as_deref(), Some("a@x.com"));
        let wrong = Vault::from_entries(&[9; 32], saved);
        assert!(matches!(wrong.reidentify(&p), Err(Error::Decrypt { .. })));
    }
}
