//! Who is calling, and may they: API keys, requests per minute, tokens per day.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderMap;

use crate::guard::GuardPolicy;
use crate::store::{ct_eq, digest, secs_to_utc_midnight, utc_day, KeyInfo, KeyLimits, Store};
use crate::ApiError;

/// The caller of a request: a key, or anonymous when the server has no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Id for logs and usage rows (`anonymous` without keys).
    pub id: String,
    /// Its limits.
    pub limits: KeyLimits,
    /// Its guard policies.
    pub policy: GuardPolicy,
}

/// Key checks and per-key limits.
#[derive(Debug)]
pub struct Auth {
    static_keys: Vec<([u8; 32], KeyInfo)>,
    store: Option<Arc<Store>>,
    anonymous_limits: KeyLimits,
    default_policy: GuardPolicy,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Auth {
    /// Keys from flags or a file (`secrets`, all with `limits`), plus those in `store`.
    pub fn new(secrets: &[String], limits: KeyLimits, store: Option<Arc<Store>>) -> Self {
        Self::with_policy(secrets, limits, GuardPolicy::default(), store)
    }

    /// Like [`new`](Self::new), with the guard policy of flag keys, anonymous callers,
    /// and stored keys that have none of their own.
    pub fn with_policy(
        secrets: &[String],
        limits: KeyLimits,
        policy: GuardPolicy,
        store: Option<Arc<Store>>,
    ) -> Self {
        let static_keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    digest(s),
                    KeyInfo {
                        id: format!("cli-{}", i + 1),
                        name: format!("cli-{}", i + 1),
                        prefix: s.chars().take(6).collect(),
                        limits,
                        input_policy: None,
                        output_policy: None,
                        revoked: false,
                    },
                )
            })
            .collect();
        Auth {
            static_keys,
            store,
            anonymous_limits: limits,
            default_policy: policy,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether requests need a key: any flag key, or any key ever added to the store
    /// (revoking the last key must not open the server to everyone).
    pub fn required(&self) -> bool {
        !self.static_keys.is_empty()
            || self
                .store
                .as_ref()
                .is_some_and(|s| s.keys().map(|k| !k.is_empty()).unwrap_or(true))
    }

    /// The caller named by `Authorization: Bearer ...` or `X-Api-Key`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if !self.required() {
            return Ok(Caller {
                id: "anonymous".into(),
                limits: self.anonymous_limits,
                policy: self.default_policy,
            });
        }
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let Some(secret) = presented else {
            return Err(ApiError::unauthorized(
                "missing API key: send 'Authorization: Bearer <key>'",
            ));
        };
        let d = digest(secret);
        let mut found = None;
        for (stored, info) in &self.static_keys {
            if ct_eq(stored, &d) {
                found = Some(info.clone());
            }
        }
        if let Some(store) = &self.store {
            match store.find(&d) {
                Ok(Some(k)) => found = Some(k),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("key lookup failed: {e}");
                    return Err(ApiError::internal("key lookup failed"));
                }
            }
        }
        match found {
            Some(k) => Ok(Caller {
                policy: GuardPolicy {
                    input: k.input_policy.unwrap_or(self.default_policy.input),
                    output: k.output_policy.unwrap_or(self.default_policy.output),
                },
                id: k.id,
                limits: k.limits,
            }),
            None => Err(ApiError::unauthorized("invalid API key")),
        }
    }

    /// Checks the caller's per-minute and per-day limits and counts this request.
    pub fn admit(&self, caller: &Caller) -> Result<(), ApiError> {
        if let (Some(budget), Some(store)) = (caller.limits.tokens_per_day, &self.store) {
            let now = SystemTime::now();
            let used = store
                .usage(&caller.id, &utc_day(now))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if used.tokens() >= budget {
                return Err(ApiError::rate_limited(
                    format!(
                        "daily token budget spent: {} of {budget} tokens used today (UTC)",
                        used.tokens()
                    ),
                    "daily_budget_exceeded",
                    secs_to_utc_midnight(now),
                ));
            }
        }
        if let Some(rpm) = caller.limits.requests_per_minute {
            let now = Instant::now();
            let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
            let q = w.entry(caller.id.clone()).or_default();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                q.pop_front();
            }
            if q.len() >= rpm as usize {
                let wait = q.front().map_or(60, |t| {
                    60u64.saturating_sub(now.duration_since(*t).as_secs())
                });
                return Err(ApiError::rate_limited(
                    format!("rate limit: {rpm} requests per minute"),
                    "rate_limit_exceeded",
                    wait,
                ));
            }
            q.push_back(now);
        }
        Ok(())
    }

    /// Records a finished (or cancelled) request's tokens.
    pub fn record(&self, caller: &Caller, prompt_tokens: usize, completion_tokens: usize) {
        if let Some(store) = &self.store {
            let day = utc_day(SystemTime::now());
            if let Err(e) = store.record(
                &caller.id,
                &day,
                prompt_tokens as u64,
                completion_tokens as u64,
            ) {
                tracing::error!("recording usage of {}: {e}", caller.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn bearer(k: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {k}")).unwrap(),
        );
        h
    }

    #[test]
    fn keys_are_checked_and_x_api_key_works_too() {
        let auth = Auth::new(&["sk-a".into()], KeyLimits::default(), None);
        assert!(auth.required());
        assert_eq!(auth.authenticate(&bearer("sk-a")).unwrap().id, "cli-1");
        assert_eq!(auth.authenticate(&bearer("sk-b")).unwrap_err().status, 401);
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).unwrap_err().status,
            401
        );
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("sk-a"));
        assert!(auth.authenticate(&h).is_ok());
    }

    #[test]
    fn requests_per_minute_and_tokens_per_day_give_429_with_retry_after() {
        let store = Arc::new(Store::in_memory().unwrap());
        let limits = KeyLimits {
            requests_per_minute: Some(2),
            tokens_per_day: Some(100),
        };
        let auth = Auth::new(&["sk-a".into()], limits, Some(Arc::clone(&store)));
        let c = auth.authenticate(&bearer("sk-a")).unwrap();
        auth.admit(&c).unwrap();
        auth.admit(&c).unwrap();
        let e = auth.admit(&c).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code),
            (429, Some("rate_limit_exceeded"))
        );
        assert!(e.retry_after.unwrap() >= 1);
        let day_limited = Auth::new(
            &["sk-b".into()],
            KeyLimits {
                requests_per_minute: None,
                tokens_per_day: Some(100),
            },
            Some(store),
        );
        let c = day_limited.authenticate(&bearer("sk-b")).unwrap();
        day_limited.admit(&c).unwrap();
        day_limited.record(&c, 60, 39);
        day_limited.admit(&c).unwrap();
        day_limited.record(&c, 1, 0);
        let e = day_limited.admit(&c).unwrap_err();
        assert_eq!(e.code, Some("daily_budget_exceeded"));
    }

    #[test]
    fn without_keys_the_server_is_open_and_anonymous() {
        let auth = Auth::new(
            &[],
            KeyLimits::default(),
            Some(Arc::new(Store::in_memory().unwrap())),
        );
        assert!(!auth.required());
        assert_eq!(
            auth.authenticate(&HeaderMap::new()).unwrap().id,
            "anonymous"
        );
    }
}
