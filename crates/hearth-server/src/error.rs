//! Errors as HTTP responses in OpenAI's shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_api::{ErrorBody, ErrorDetail};

/// An error answer: status, OpenAI error body, and for 429 a `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, ...
    pub kind: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault.
    pub param: Option<String>,
    /// Machine-readable code.
    pub code: Option<&'static str>,
    /// Seconds to wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
            param: param.map(str::to_string),
            code: None,
            retry_after: None,
        }
    }

    /// 400 for a field we know but do not support.
    pub fn unsupported(param: &str, why: &str) -> Self {
        let mut e = Self::invalid(format!("'{param}' is not supported: {why}"), Some(param));
        e.code = Some("unsupported_parameter");
        e
    }

    /// 401 `authentication_error`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: message.into(),
            param: None,
            code: Some("invalid_api_key"),
            retry_after: None,
        }
    }

    /// 429 `rate_limit_error` with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, code: &'static str, retry_after: u64) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            message: message.into(),
            param: None,
            code: Some(code),
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// 404 for an unknown model.
    pub fn model_not_found(name: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            message: format!("the model '{name}' does not exist"),
            param: Some("model".into()),
            code: Some("model_not_found"),
            retry_after: None,
        }
    }

    /// 503 while the model loads or the server shuts down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "server_error",
            message: message.into(),
            param: None,
            code: Some("unavailable"),
            retry_after: Some(1),
        }
    }

    /// 500: our fault, never the client's.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                param: self.param.clone(),
                code: self.code.map(str::to_string),
            },
        }
    }

    /// Maps an engine error: admission limits are 429, bad values 400, the rest 500.
    pub fn from_engine(e: hearth_engine::Error, prompt_param: &str) -> Self {
        use hearth_engine::Error as E;
        match e {
            E::Overloaded { .. } => {
                Self::rate_limited(format!("the server is busy: {e}"), "overloaded", 1)
            }
            E::ContextLengthExceeded { .. } => {
                let mut a = Self::invalid(
                    format!("this model's maximum context length was exceeded: {e}"),
                    Some(prompt_param),
                );
                a.code = Some("context_length_exceeded");
                a
            }
            E::InvalidParam { field, .. } => Self::invalid(e.to_string(), Some(field)),
            E::EmptyStopString { .. } => Self::invalid(e.to_string(), Some("stop")),
            E::InvalidArgument(m) => Self::invalid(m, None),
            E::UnknownAdapter { name } => Self::model_not_found(&name),
            E::AdapterExists { .. } => Self::invalid(e.to_string(), Some("lora_name")),
            other => Self::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
