//! The man page, generated from the clap definition of the command line.

use crate::cli::Cli;
use clap::CommandFactory;

/// runner-health-exporter(1) in roff.
pub fn render() -> anyhow::Result<Vec<u8>> {
    // The version without the git revision: the committed page must not
    // change with every commit (the drift test compares it).
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let man = clap_mangen::Man::new(cmd).date("").source(concat!(
        "runner-health-exporter ",
        env!("CARGO_PKG_VERSION")
    ));
    let mut out = Vec::new();
    man.render(&mut out)?;
    Ok(out)
}
