//! `streambus-tenancy`: the engine's command-line front end.
//!
//! - `demo`: the seed's complete integration example, run for real: tenants of
//!   mixed tiers offered more than their quotas from many threads, with a live
//!   table and a latency summary.
//! - `serve`: the engine as a service: admin HTTP API over a durable store,
//!   Prometheus metrics and alerts.
//! - `tenants`: the admin API's command-line client.
//! - `demo --redis URL --nodes N`: the demo as N broker processes holding
//!   cluster-wide quotas through Redis.

use clap::{Parser, Subcommand};

mod cli;
mod cluster_demo;
mod demo;
mod serve;

/// Lock-free multi-tenancy for message brokers.
#[derive(Debug, Parser)]
#[command(name = "streambus-tenancy", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the integration demo: tenants of mixed tiers, overloaded, enforced live.
    Demo(demo::DemoArgs),
    /// Serve the admin API, /metrics and /healthz over a durable tenant store.
    Serve(serve::ServeArgs),
    /// Manage tenants on a running server.
    Tenants(cli::TenantsArgs),
    /// One broker of `demo --redis` (started by it).
    #[command(hide = true)]
    DemoNode(cluster_demo::NodeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Tenants(args) => cli::run(args),
        Command::DemoNode(args) => cluster_demo::run_node(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
