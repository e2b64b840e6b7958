//! The man page, generated from the clap definition of the command line.

use crate::cli::Cli;
use clap::CommandFactory;

/// runner-health-exporter(1) in roff.
pub fn render() -> anyhow::Result<Vec<u8>> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd).date("").source(concat!(
        "runner-health-exporter ",
        env!("CARGO_PKG_VERSION")
    ));
    let mut out = Vec::new();
    man.render(&mut out)?;
    Ok(out)
}
