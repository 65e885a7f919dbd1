//! API keys and their usage in SQLite, so budgets survive a restart.
//!
//! Keys are stored only as SHA-256 digests (the secret is shown once, when added);
//! lookups compare digests in constant time against every active key. Usage is one
//! row per key and UTC day. The database holds no prompt or completion text.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::guard::{InputPolicy, OutputPolicy};

/// Errors of the key and usage store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("usage database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// No random bytes for a new key.
    #[error("cannot draw random bytes for a key: {0}")]
    Random(String),
    /// A key name that is taken or empty.
    #[error("{0}")]
    BadName(String),
}

/// Limits of one key; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Prompt plus completion tokens per UTC day.
    pub tokens_per_day: Option<u64>,
}

/// A known key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Stable id used in logs and usage rows (`db-3`, `cli-1`).
    pub id: String,
    /// Name given by the operator.
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// Its limits.
    pub limits: KeyLimits,
    /// Its input policy (`None`: the server's default).
    pub input_policy: Option<InputPolicy>,
    /// Its output policy (`None`: the server's default).
    pub output_policy: Option<OutputPolicy>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Token and request counts of one key on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayUsage {
    /// Requests served.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
}

impl DayUsage {
    /// Prompt plus completion tokens.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The SQLite store.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: String,
}

/// SHA-256 of a secret.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equality of two digests in time independent of where they differ.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Today's date in UTC as `YYYY-MM-DD`.
pub fn utc_day(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Seconds until the next UTC midnight.
pub fn secs_to_utc_midnight(t: SystemTime) -> u64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    86_400 - secs % 86_400
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Sqlite {
                path: p.clone(),
                source: rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into()),
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: p.clone(),
            source,
        })?;
        Self::init(conn, p)
    }

    /// A store that lives only in memory (tests, `--no-usage-db`).
    pub fn in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: ":memory:".into(),
            source,
        })?;
        Self::init(conn, ":memory:".into())
    }

    fn init(conn: Connection, path: String) -> Result<Store, StoreError> {
        let s = Store {
            conn: Mutex::new(conn),
            path,
        };
        s.with(|c| {
            c.execute_batch(
                "PRAGMA journal_mode=WAL;
                 PRAGMA synchronous=NORMAL;
                 PRAGMA busy_timeout=5000;
                 CREATE TABLE IF NOT EXISTS keys (
                     id INTEGER PRIMARY KEY AUTOINCREMENT,
                     name TEXT NOT NULL UNIQUE,
                     digest BLOB NOT NULL,
                     prefix TEXT NOT NULL,
                     rpm INTEGER,
                     tokens_per_day INTEGER,
                     created INTEGER NOT NULL,
                     revoked INTEGER NOT NULL DEFAULT 0
                 );
                 CREATE TABLE IF NOT EXISTS usage (
                     key_id TEXT NOT NULL,
                     day TEXT NOT NULL,
                     requests INTEGER NOT NULL DEFAULT 0,
                     prompt_tokens INTEGER NOT NULL DEFAULT 0,
                     completion_tokens INTEGER NOT NULL DEFAULT 0,
                     PRIMARY KEY (key_id, day)
                 );",
            )?;
            // Columns added after the first release: add them to older databases.
            for col in ["input_policy", "output_policy"] {
                let has: bool = c
                    .prepare("SELECT 1 FROM pragma_table_info('keys') WHERE name = ?1")?
                    .exists([col])?;
                if !has {
                    c.execute_batch(&format!("ALTER TABLE keys ADD COLUMN {col} TEXT"))?;
                }
            }
            Ok(())
        })?;
        Ok(s)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let c = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&c).map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Adds a key named `name`; returns it and its secret (shown once).
    pub fn add_key(&self, name: &str, limits: KeyLimits) -> Result<(KeyInfo, String), StoreError> {
        self.add_key_with(name, limits, None, None)
    }

    /// Adds a key with its own guard policies.
    pub fn add_key_with(
        &self,
        name: &str,
        limits: KeyLimits,
        input_policy: Option<InputPolicy>,
        output_policy: Option<OutputPolicy>,
    ) -> Result<(KeyInfo, String), StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::BadName("a key needs a non-empty name".into()));
        }
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
        let secret: String = std::iter::once("hk-".to_string())
            .chain(raw.iter().map(|b| format!("{b:02x}")))
            .collect();
        let prefix = secret[..9].to_string();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let taken = self.with(|c| {
            c.query_row("SELECT 1 FROM keys WHERE name = ?1", [name], |_| Ok(()))
                .optional()
        })?;
        if taken.is_some() {
            return Err(StoreError::BadName(format!("a key named '{name}' exists")));
        }
        let id = self.with(|c| {
            c.execute(
                "INSERT INTO keys (name, digest, prefix, rpm, tokens_per_day, created,
                                   input_policy, output_policy)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    name,
                    digest(&secret).to_vec(),
                    prefix,
                    limits.requests_per_minute,
                    limits.tokens_per_day.map(|t| t as i64),
                    now as i64,
                    input_policy.map(InputPolicy::as_str),
                    output_policy.map(OutputPolicy::as_str),
                ],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        Ok((
            KeyInfo {
                id: format!("db-{id}"),
                name: name.into(),
                prefix,
                limits,
                input_policy,
                output_policy,
                revoked: false,
            },
            secret,
        ))
    }

    /// Every key, revoked ones too.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, StoreError> {
        Ok(self.key_rows()?.into_iter().map(|(k, _)| k).collect())
    }

    fn key_rows(&self) -> Result<Vec<(KeyInfo, Vec<u8>)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, name, prefix, rpm, tokens_per_day, revoked, digest, input_policy,
                        output_policy FROM keys ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    KeyInfo {
                        id: format!("db-{}", r.get::<_, i64>(0)?),
                        name: r.get(1)?,
                        prefix: r.get(2)?,
                        limits: KeyLimits {
                            requests_per_minute: r.get(3)?,
                            tokens_per_day: r.get::<_, Option<i64>>(4)?.map(|t| t.max(0) as u64),
                        },
                        input_policy: r
                            .get::<_, Option<String>>(7)?
                            .and_then(|p| InputPolicy::parse(&p)),
                        output_policy: r
                            .get::<_, Option<String>>(8)?
                            .and_then(|p| OutputPolicy::parse(&p)),
                        revoked: r.get::<_, i64>(5)? != 0,
                    },
                    r.get::<_, Vec<u8>>(6)?,
                ))
            })?;
            rows.collect()
        })
    }

    /// Revokes the key with this name or id; false if there is none.
    pub fn revoke(&self, name_or_id: &str) -> Result<bool, StoreError> {
        let id = name_or_id
            .strip_prefix("db-")
            .and_then(|s| s.parse::<i64>().ok());
        let n = self.with(|c| {
            c.execute(
                "UPDATE keys SET revoked = 1 WHERE name = ?1 OR id = ?2",
                params![name_or_id, id.unwrap_or(-1)],
            )
        })?;
        Ok(n > 0)
    }

    /// The active key whose secret has this digest (compared in constant time
    /// against every active key).
    pub fn find(&self, d: &[u8; 32]) -> Result<Option<KeyInfo>, StoreError> {
        let mut found = None;
        for (info, stored) in self.key_rows()? {
            let Ok(stored) = <[u8; 32]>::try_from(stored.as_slice()) else {
                continue;
            };
            if ct_eq(&stored, d) && !info.revoked {
                found = Some(info);
            }
        }
        Ok(found)
    }

    /// Adds one request's tokens to `key_id`'s row for `day`.
    pub fn record(
        &self,
        key_id: &str,
        day: &str,
        prompt_tokens: u64,
        completion_tokens: u64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO usage (key_id, day, requests, prompt_tokens, completion_tokens)
                 VALUES (?1, ?2, 1, ?3, ?4)
                 ON CONFLICT (key_id, day) DO UPDATE SET
                   requests = requests + 1,
                   prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                   completion_tokens = completion_tokens + excluded.completion_tokens",
                params![key_id, day, prompt_tokens as i64, completion_tokens as i64],
            )
            .map(|_| ())
        })
    }

    /// `key_id`'s usage on `day`.
    pub fn usage(&self, key_id: &str, day: &str) -> Result<DayUsage, StoreError> {
        let u = self.with(|c| {
            c.query_row(
                "SELECT requests, prompt_tokens, completion_tokens FROM usage
                 WHERE key_id = ?1 AND day = ?2",
                params![key_id, day],
                |r| {
                    Ok(DayUsage {
                        requests: r.get::<_, i64>(0)?.max(0) as u64,
                        prompt_tokens: r.get::<_, i64>(1)?.max(0) as u64,
                        completion_tokens: r.get::<_, i64>(2)?.max(0) as u64,
                    })
                },
            )
            .optional()
        })?;
        Ok(u.unwrap_or_default())
    }

    /// All usage rows, newest day first: `(key_id, day, usage)`.
    pub fn usage_rows(&self) -> Result<Vec<(String, String, DayUsage)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT key_id, day, requests, prompt_tokens, completion_tokens FROM usage
                 ORDER BY day DESC, key_id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    DayUsage {
                        requests: r.get::<_, i64>(2)?.max(0) as u64,
                        prompt_tokens: r.get::<_, i64>(3)?.max(0) as u64,
                        completion_tokens: r.get::<_, i64>(4)?.max(0) as u64,
                    },
                ))
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_days_are_civil_dates() {
        assert_eq!(utc_day(UNIX_EPOCH), "1970-01-01");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        assert_eq!(utc_day(t), "2026-11-30");
        assert_eq!(
            utc_day(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29"
        );
    }

    #[test]
    fn keys_are_found_by_secret_and_revoked_keys_are_not() {
        let s = Store::in_memory().unwrap();
        let (k, secret) = s.add_key("alice", KeyLimits::default()).unwrap();
        assert!(secret.starts_with("hk-") && secret.len() == 51);
        assert_eq!(s.find(&digest(&secret)).unwrap(), Some(k.clone()));
        assert_eq!(s.find(&digest("hk-nope")).unwrap(), None);
        assert!(s.add_key("alice", KeyLimits::default()).is_err());
        assert!(s.revoke("alice").unwrap());
        assert_eq!(s.find(&digest(&secret)).unwrap(), None);
    }

    #[test]
    fn usage_adds_up_per_day_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("usage.sqlite");
        {
            let s = Store::open(&p).unwrap();
            s.record("db-1", "2026-11-29", 10, 5).unwrap();
            s.record("db-1", "2026-11-29", 3, 2).unwrap();
            s.record("db-1", "2026-11-30", 1, 1).unwrap();
        }
        let s = Store::open(&p).unwrap();
        let u = s.usage("db-1", "2026-11-29").unwrap();
        assert_eq!((u.requests, u.tokens()), (2, 20));
        assert_eq!(s.usage_rows().unwrap().len(), 2);
    }
}
