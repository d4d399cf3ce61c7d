//! The `mfa-gateway` command line. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mfa_gateway::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "mfa-gateway",
    version,
    about = "TLS reverse proxy that adds TOTP multi-factor authentication in front of a legacy VMS"
)]
struct Cli {
    /// Configuration file (same as `run --config FILE`).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    /// Log format: text or json (overrides log.format).
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a configuration file and exit (0: valid).
    CheckConfig { file: PathBuf },
    /// Start a demo: a stand-in VMS and the gateway in front of it on https://127.0.0.1:8443.
    Demo {
        /// Demo configuration (default: config/demo.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Inspect the dated MFA policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print a new random encryption key (base64) for mfa.keys.
    GenKey,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the role matrix in force on a date (YYYY-MM-DD; default today).
    Show {
        #[arg(long)]
        at: Option<String>,
        /// Policy file (default: config/policy.toml).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Validate a policy file.
    Check { file: PathBuf },
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn log_format(cli: Option<&str>, cfg: LogFormat) -> Result<LogFormat, String> {
    match cli {
        None => Ok(cfg),
        Some("json") => Ok(LogFormat::Json),
        Some("text") => Ok(LogFormat::Text),
        Some(other) => Err(format!("--log-format: \"text\" or \"json\", not {other:?}")),
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = workers {
        b.worker_threads(w.max(1));
    }
    b.enable_all().build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match (cli.command, cli.config) {
        (Some(c), None) => c,
        (None, Some(config)) => Command::Run { config },
        (Some(_), Some(_)) => return fail("--config goes with `run` (or alone)"),
        (None, None) => return fail("nothing to do: give --config FILE, or see --help"),
    };
    match command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(cfg) => match mfa_gateway::run::key_ring(&cfg, false).and_then(|_| {
                mfa_gateway::policy::Policy::load(&cfg.policy.file)
                    .map_err(|e| mfa_gateway::run::StartError::Policy(e.to_string()))
            }) {
                Ok(_) => {
                    println!("{}: configuration is valid", file.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            Err(e) => fail(format!("{} is not valid:\n{e}", file.display())),
        },
        Command::Run { config } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(format!("{} is not valid:\n{e}", config.display())),
            };
            let format = match log_format(cli.log_format.as_deref(), cfg.log.format) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            init_logging(format, &cfg.log.level);
            let rt = match runtime(cfg.server.worker_threads) {
                Ok(rt) => rt,
                Err(e) => return fail(format!("cannot start the runtime: {e}")),
            };
            rt.block_on(async move {
                match mfa_gateway::run::start(cfg, mfa_gateway::run::Options::default()).await {
                    Ok(running) => {
                        mfa_gateway::run::run_until_signal(running).await;
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            })
        }
        Command::Demo { config } => {
            let format = match log_format(cli.log_format.as_deref(), LogFormat::Text) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            init_logging(format, "info");
            let rt = match runtime(None) {
                Ok(rt) => rt,
                Err(e) => return fail(format!("cannot start the runtime: {e}")),
            };
            rt.block_on(async move {
                match mfa_gateway::demo::runner::run(config).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => fail(e),
                }
            })
        }
        Command::Policy { command } => policy_command(command),
        Command::GenKey => {
            println!("{}", mfa_gateway::auth::crypto::generate_key_material());
            ExitCode::SUCCESS
        }
    }
}

fn policy_command(c: PolicyCommand) -> ExitCode {
    use mfa_gateway::policy::Policy;
    match c {
        PolicyCommand::Check { file } => match Policy::load(&file) {
            Ok(_) => {
                println!("{}: policy is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        PolicyCommand::Show { at, file } => {
            let file = file.unwrap_or_else(|| PathBuf::from("config/policy.toml"));
            let policy = match Policy::load(&file) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let date = match at {
                Some(s) => match s.parse::<jiff::civil::Date>() {
                    Ok(d) => d,
                    Err(_) => return fail(format!("--at: not a date (YYYY-MM-DD): {s:?}")),
                },
                None => policy.today(jiff::Timestamp::now()),
            };
            print!("{}", policy.render_matrix(date));
            ExitCode::SUCCESS
        }
    }
}
