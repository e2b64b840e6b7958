//! Entry point: parse the command line and dispatch.

use clap::Parser;
use runner_health_exporter::cli::{Cli, Command, ConfigCommand};
use runner_health_exporter::daemon;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        None | Some(Command::Serve) => daemon::serve(&cli),
        Some(Command::Check(args)) => runner_health_exporter::check::run(&cli, args),
        Some(Command::Generate { output_dir }) => daemon::generate(&cli, output_dir),
        Some(Command::Config {
            command: ConfigCommand::Check,
        }) => daemon::config_check(&cli),
    }
}
