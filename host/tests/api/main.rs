//! Integration tests of mbk-host: one binary, real services.
//!
//! Every database test runs on SQLite and on PostgreSQL (a fresh database per test), every storage
//! test on the filesystem and on a real S3 server (Garage, started by `scripts/test`). Test names
//! say which: `db::postgres::users_roundtrip`, `storage::s3::multipart_upload_round_trips`.

mod abuse;
mod active_content;
mod animation;
mod author;
mod auto_formats;
mod caps;
mod cli;
mod cluster;
mod console;
mod contract;
mod crash;
mod db;
mod decoder_checks;
mod direct_uploads;
mod fairness;
mod files;
mod front_door;
mod gravity;
mod heic;
mod helpers;
mod http;
mod identity;
mod image_facts;
mod jobs;
mod jxl;
mod metering;
mod plugin_owners;
mod plugins;
mod private_urls;
mod projects;
mod provenance;
mod queue;
mod recovery;
mod registry;
mod sessions;
mod start_order;
mod storage;
mod sweep;
mod tus;
mod tus_clients;
mod tus_quotas;
mod typed_params;
mod webhooks;
mod workers;
