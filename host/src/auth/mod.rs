//! Identity: passwords (argon2id), access tokens (HS256 JWT), refresh-token families, login
//! throttling, and the flows that combine them ([`service`]). Nothing here knows axum except
//! [`extract`], which turns a bearer token into a [`extract::CurrentUser`].

pub mod api_keys;
pub mod extract;
pub mod password;
pub mod service;
pub mod throttle;
pub mod tokens;

pub use extract::{Caller, CurrentUser, ProjectKey, RequireAdmin, RequireSu};
