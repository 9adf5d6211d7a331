//! Files and images: what an upload is (sniffing, header probing), storing it with its rows
//! under the project's quotas, and finding, serving and deleting it again.

pub mod access;
pub mod analysis;
pub mod direct;
pub mod focal;
mod heif_header;
pub mod probe;
pub mod service;
pub mod sniff;
pub mod tus;
pub mod view;
