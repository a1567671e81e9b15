//! pinch: a small, always-on, self-hosted AI assistant gateway.
//! See ARCHITECTURE.md for the map of this crate.

pub mod agent;
pub mod api_error;
pub mod api_wire;
mod arm_tls;
pub mod atomic64;
pub mod backup;
pub mod card_wear;
pub mod channel;
pub mod cli;
pub mod config;
pub mod db;
pub mod doctor;
pub mod filesystem;
pub mod gateway;
pub mod home;
pub mod llm;
pub mod local_llm;
pub mod migrate;
pub mod net;
pub mod provider;
pub mod queue;
pub mod routes;
pub mod runtime_file;
pub mod sandbox;
pub mod sched;
pub mod service;
pub mod service_openrc;
pub mod sort;
pub mod store;
pub mod util;
pub mod workspace;

#[cfg(test)]
mod fuzz;
