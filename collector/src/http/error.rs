//! API errors: JSON `{ "error": "..." }` with a fitting status; internals are logged, not sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message for the client (never SQL or file paths).
    pub message: String,
}

impl ApiError {
    /// 400: a bad parameter; `param` is named in the message.
    pub fn bad_param(param: &str, why: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: format!("{param}: {why}"),
        }
    }

    /// 401: no or unknown token.
    pub fn unauthorized(why: &str) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: why.to_owned(),
        }
    }

    /// 403: the token may not do this.
    pub fn forbidden(why: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: why.into(),
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: what.into(),
        }
    }

    /// 500: logs `detail`, answers a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        log::error!("http: {detail}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error (see the collector's log)".into(),
        }
    }
}

impl ApiError {
    /// 503: the database (or the writer) cannot answer now.
    pub fn unavailable(detail: impl std::fmt::Display) -> ApiError {
        log::error!("http: {detail}");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the database cannot be read now (see the collector's log)".into(),
        }
    }
}

impl ApiError {
    /// 429: this client has used its share (streams per token).
    pub fn too_many(why: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: why.into(),
        }
    }

    /// 503: a cap of the whole collector is reached (connections, streams, exports).
    pub fn busy(why: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: why.into(),
        }
    }
}

/// The JSON error body every error answer has: `{"error": message}`.
pub fn body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::SERVICE_UNAVAILABLE
        {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"wifisess\""),
            );
        }
        r
    }
}
