//! `bookstore`: a declarative YAML stack in, a running BookStore on AWS out.

mod artifact;
mod aws;
mod cli;
mod commands;
mod completions;
mod config;
mod cost;
mod diagnostics;
mod doctor;
mod engine;
mod env_ops;
mod error;
mod fleet;
mod graph;
mod guard;
mod journal;
mod kinds;
mod kube;
mod permissions;
mod plan;
mod prices;
mod print;
mod probe;
mod reference;
mod render;
mod report;
mod stack;
mod state;
mod templates;

use clap::Parser;

use crate::report::OutputFormat;

fn main() {
    let cli = cli::Cli::parse();
    // What needs no AWS and no runtime.
    match cli.command {
        cli::Command::Completions { shell } => {
            completions::completions(shell, &mut std::io::stdout());
            return;
        }
        cli::Command::Man => {
            if let Err(e) = completions::man(&mut std::io::stdout()) {
                eprintln!("error: writing the man page: {e}");
                std::process::exit(1);
            }
            return;
        }
        _ => {}
    }
    let output = cli.output;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(4)
        .build()
        .expect("tokio runtime");
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&e.to_json()).expect("json")
                ),
                OutputFormat::Text => {
                    eprintln!("error: {e}");
                    if let Some(hint) = e.hint() {
                        eprintln!("  hint: {hint}");
                    }
                }
            }
            e.exit_code()
        }
    };
    // Waits may still be sleeping in detached tasks; they must not hold the exit.
    runtime.shutdown_background();
    std::process::exit(code);
}
