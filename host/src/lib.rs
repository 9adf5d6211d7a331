//! # mbk-host
//!
//! The MediaBlobKit host: an axum HTTP API and the job workers, in one library that the `mbk-host`
//! binary and the integration tests share.
//!
//! Arrows point one way: [`http`] uses [`auth`], [`db`], [`storage`], [`jobs`] and [`pipeline`];
//! [`jobs`] use [`pipeline`], which uses [`plugins`]; nothing below [`http`] knows axum or its
//! error type: domain modules return [`error::Error`], which `http/error.rs` maps to the
//! contract's answers. [`state`] wires a validated [`config::Config`] into an [`AppState`];
//! [`app`] serves it; `main.rs` only parses the command line.

pub mod app;
pub mod auth;
pub mod author;
pub mod config;
pub mod db;
pub mod delivery;
pub mod error;
pub mod files;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod plugins;
pub mod projects;
pub mod state;
pub mod storage;
pub mod sync;
pub mod telemetry;
pub mod webhooks;

#[cfg(test)]
mod layering;

pub use state::{App, AppState};
