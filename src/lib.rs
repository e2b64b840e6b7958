//! runner-health-exporter: a Prometheus exporter for self-hosted GitHub
//! Actions runners. See ARCHITECTURE.md for the map.

pub mod check;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod duration;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod health;
pub mod http;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod query;
pub mod settings;
pub mod snapshot;
pub mod timefmt;
pub mod version;
pub mod webconfig;
