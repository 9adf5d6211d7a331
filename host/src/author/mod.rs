//! The plugin author's commands: `mbk-host plugin new NAME` (a plugin crate on the SDK, ready to
//! build) and `mbk-host plugin push FILE` (registers it through the API). With `plugin validate`,
//! `cargo build` and one settings update, five commands take an author from nothing to a variant
//! rendered by their own plugin (README, "Writing a plugin").

pub mod push;
pub mod scaffold;
