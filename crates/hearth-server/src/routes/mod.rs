//! HTTP handlers, one module per family of endpoints.

pub mod chat;
pub mod completions;
pub mod llama;
pub mod lora;
pub mod metrics;
pub mod moderations;
pub mod simple;
pub mod sse;

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Parses a JSON body; the error names the field at fault (`messages[0].role`).
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "the request body is empty; send JSON",
            None,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!("malformed JSON: {inner}"), None)
        } else if path == "." {
            ApiError::invalid(format!("invalid request: {inner}"), None)
        } else {
            ApiError::invalid(format!("invalid value for '{path}': {inner}"), Some(&path))
        }
    })
}

/// Text of a token for log-probability reports.
pub fn token_text(tok: &hearth_tokenizer::Tokenizer, id: u32) -> (String, Vec<u8>) {
    let bytes = tok.token_bytes(id, true);
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
