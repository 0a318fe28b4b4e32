use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `converge plan | head` should end quietly, as other Unix tools do, not panic on a closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A fleet's reads go out together, a socket each (`aws::budget::Connections` sizes itself to the limit).
    converge::aws::budget::raise_open_files_limit();
    // A shell asking for completions (`COMPLETE=bash converge -- ...`) is answered, and nothing else runs.
    clap_complete::CompleteEnv::with_factory(<converge::cli::Cli as clap::CommandFactory>::command).var(converge::cli::COMPLETE_VAR).complete();
    let cli = converge::cli::Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CONVERGE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr);
    // With `--log-format json`, diagnostics are JSON lines too (on standard error), for the same pipeline.
    match cli.log_format() {
        converge::reconcile::event::LogFormat::Json => logs.json().flatten_event(true).init(),
        converge::reconcile::event::LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    match converge::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}
