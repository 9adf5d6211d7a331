//! Identity: passwords (argon2id), access tokens (HS256 JWT), refresh-token families, login
//! throttling, who calls ([`caller`]) and the flows that combine them ([`service`]). Nothing here
//! knows axum: `http/extract.rs` reads the headers and calls [`caller`].

pub mod api_keys;
pub mod caller;
pub mod password;
pub mod service;
pub mod throttle;
pub mod tokens;

pub use caller::{Caller, CurrentUser, ProjectKey};
