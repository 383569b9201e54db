//! `k8rs`: Kubernetes in one binary.
//!
//! `main` parses the command line, sets up logging and a Tokio runtime, runs the chosen
//! subcommand and turns any failure into one `error: …` line and a non-zero exit code.

mod cli;
mod controller_manager_cmd;
mod data_dir;
mod embedded;
mod hollow_cmd;
mod logging;
mod scheduler_cmd;
mod server_cmd;
mod shutdown;
mod up;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the API server allocates and frees many small
/// JSON buffers across threads, where glibc spent a quarter of the server's CPU (perf
/// profile of deploy-bench) and kept freed memory in per-thread arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            cli::Command::Server(args) => server_cmd::run(args).await,
            cli::Command::Up(args) => up::run(args).await,
            cli::Command::Agent(args) => up::agent::run(args).await,
            cli::Command::NodeCredentials(args) => up::agent::node_credentials(args),
            cli::Command::Hollow(args) => hollow_cmd::run(args).await,
            cli::Command::Scheduler(args) => scheduler_cmd::run(args).await,
            cli::Command::ControllerManager(args) => controller_manager_cmd::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, as `outer: inner: root`.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_on_one_line_with_their_causes() {
        let e = anyhow::anyhow!("disk full\nreally").context("cannot write db");
        assert_eq!(one_line(&e), "cannot write db: disk full really");
    }
}
