//! Generated artifacts: everything here is derived from the metric catalog,
//! the CLI definition and the health thresholds, written by
//! `runner-health-exporter generate`, committed, and checked for drift by
//! `tests/it/generated.rs`.

pub mod alerts;
pub mod dashboard;
pub mod docs;
pub mod man;

use crate::config::HealthConfig;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Every generated file, as a path relative to the output directory and
/// its content. `health` gives the thresholds of the alerts and the
/// dashboard (the committed files use the defaults).
pub fn files(health: &HealthConfig) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    Ok(vec![
        (
            PathBuf::from("docs/metrics.md"),
            docs::metrics_markdown().into_bytes(),
        ),
        (
            PathBuf::from("man/runner-health-exporter.1"),
            man::render()?,
        ),
        (
            PathBuf::from("alerts/runner-health.rules.yml"),
            alerts::rules_yaml(health).into_bytes(),
        ),
        (
            PathBuf::from("grafana/runner-health.json"),
            dashboard::dashboard_json(health).into_bytes(),
        ),
    ])
}

/// Writes every generated file under `dir`.
pub fn write_all(dir: &Path, health: &HealthConfig) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, content) in files(health)? {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
