//! Every failure becomes a friendly page with the right status: bad input is 400, never 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::web::{ErrorShown, LoginNeeded};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("please log in first")]
    LoginRequired,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts: try again in {0} minutes")]
    TooManyAttempts(i64),
    #[error("the server is busy: try again in a moment")]
    Busy,
    /// A service of the split did not answer (its name).
    #[error("the {0} service does not answer: try again in a moment")]
    Unavailable(&'static str),
    #[error("payload too large: {0}")]
    TooLarge(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::LoginRequired => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Busy | AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(_) | AppError::Sqlite(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The heading of an error page with this status.
pub fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "That did not work",
        StatusCode::UNAUTHORIZED => "Please log in",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Cannot do that now",
        StatusCode::TOO_MANY_REQUESTS => "Slow down",
        StatusCode::PAYLOAD_TOO_LARGE => "Too large",
        StatusCode::SERVICE_UNAVAILABLE => "Busy",
        _ => "Something went wrong on our side",
    }
}

impl IntoResponse for AppError {
    /// The status and what to tell the visitor; `web::around_every_request` renders the page
    /// inside the site (the body here is only its plain-text stand-in).
    fn into_response(self) -> Response {
        if matches!(self, AppError::LoginRequired) {
            // Browsers follow this to the login form (the middleware adds the way back).
            let mut response = (
                StatusCode::SEE_OTHER,
                [(axum::http::header::LOCATION, "/login")],
            )
                .into_response();
            response.extensions_mut().insert(LoginNeeded);
            return response;
        }
        let status = self.status();
        if status.is_server_error() && !matches!(self, AppError::Busy | AppError::Unavailable(_)) {
            tracing::error!(error = ?self, "request failed");
        }
        let title = title(status);
        let message = if matches!(self, AppError::Busy | AppError::Unavailable(_)) {
            self.to_string()
        } else if status.is_server_error() {
            "Please try again in a moment.".to_string()
        } else {
            // Written in lower case to be composed; the page capitalizes its first letter.
            self.to_string()
        };
        let retry = matches!(self, AppError::Busy | AppError::Unavailable(_))
            .then_some([(axum::http::header::RETRY_AFTER, "1")]);
        let mut response = (status, retry, format!("{title}: {message}")).into_response();
        response
            .extensions_mut()
            .insert(ErrorShown { title, message });
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
