//! [`Error`]: what the domain modules (auth, projects, files, the plugin registry, the state)
//! return when a request cannot be served. It says *what* went wrong in the domain's words (not
//! found, a field that fails validation, a conflict with its code, a dependency that does not
//! answer) and knows nothing of HTTP: `http/error.rs` alone maps each case to a status, a code and
//! the contract's body, as the Rust registry service keeps HTTP errors out of its model code.

/// A failed domain operation. The `Display` text of each case is the message the contract shows
/// (for [`Error::Unavailable`] and [`Error::Internal`] the cause is for the log only).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be understood at all (malformed JSON, a body cut short).
    #[error("{0}")]
    Malformed(String),
    /// Understood, but a field is wrong; the message names the field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// No credential, or one that does not hold (expired, unknown, revoked).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid caller without the right to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or the caller may not know it does.
    #[error("{0}")]
    NotFound(String),
    /// The thing existed and has expired for good (a resumable upload past its expiry).
    #[error("{0}")]
    Gone(String),
    /// The request clashes with the current state; `code` is the contract's code for it
    /// (`conflict`, `quota_exceeded`, `variant_not_ready`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The sender stopped sending (a stalled upload or body).
    #[error("{0}")]
    Stalled(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A byte range outside the object; `size` is the object's size when it is known.
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable { size: Option<u64> },
    /// An uploaded plugin that is not a valid component of the plugin world.
    #[error("{0}")]
    InvalidPlugin(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (database, storage) does not answer, or every plugin sandbox is busy: worth
    /// a retry. `message` may be shown; `cause` is for the log.
    #[error("{message}")]
    Unavailable { message: String, cause: Option<String> },
    /// A bug or an unexpected failure. The cause is for the log, never for the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("{what} {id} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict { code: "conflict", message: message.into() }
    }

    pub fn unavailable(message: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable { message: message.into(), cause: Some(cause.to_string()) }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_overloaded(&e) {
            return Error::unavailable("the database is busy; retry in a moment", e);
        }
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Error::unavailable("the database is unavailable", e)
            }
            other => Error::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

impl From<crate::storage::StorageError> for Error {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as S;
        match e {
            S::NotFound(key) => Error::NotFound(format!("object {key} not found")),
            S::InvalidKey(message) => Error::validation("key", message),
            S::RangeNotSatisfiable { size } => Error::RangeNotSatisfiable { size },
            S::Backend(cause) => Error::unavailable("the blob store is unavailable", format!("{cause:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_message_names_the_field() {
        let e = Error::validation("settings.variants[2].quality", "must be 1..=100");
        assert_eq!(e.to_string(), "settings.variants[2].quality: must be 1..=100");
    }

    #[test]
    fn not_found_names_what_and_which() {
        assert_eq!(Error::not_found("file", 7).to_string(), "file 7 not found");
    }
}
