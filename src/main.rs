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
    /// Print a new administration API token and the SHA-256 to put in admin.tokens.
    GenToken,
    /// Break-glass administration straight on Redis (when the web path is unusable).
    Admin {
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Show a user's MFA state.
    Status { user: String },
    /// Disconnect MFA for a user (lost phone): deletes the secret and recovery codes and ends
    /// the user's sessions on every instance. With admin.reset_requires_enrollment_code (the
    /// default) it prints the one-time enrollment code to read to the user on the phone.
    Reset {
        user: String,
        #[arg(long)]
        reason: String,
    },
    /// Make a new one-time enrollment code for a user without an app (the earlier code stops
    /// working); it is printed once.
    EnrollmentCode { user: String },
    /// Lift the lock of a user's MFA step.
    Unlock { user: String },
    /// After Redis was restored from a backup: re-apply the resets, self-service disables
    /// and phone replacements recorded since TIME (audit export or gateway log), so a
    /// restore does not bring a disconnected phone back. Exit status 1 if a record could
    /// not be applied (e.g. its signature does not match).
    Reapply {
        /// The backup's time: a date (YYYY-MM-DD, UTC) or Unix seconds. Take it a little
        /// early: records that no longer apply are skipped.
        #[arg(long)]
        since: String,
        /// Audit export (`audit export`), or the gateway's log (JSON or text); `-`: stdin.
        #[arg(long)]
        from: PathBuf,
        /// Only list what would be re-applied.
        #[arg(long)]
        dry_run: bool,
    },
    /// After a key rotation: seal every enrolled TOTP secret again with mfa.active_key, so
    /// older keys protect nothing stored and can leave mfa.keys. Safe while gateways run.
    /// Exit status 1 if some secret does not open (they are listed and left as they are).
    Reseal {
        /// Only count what would be resealed and check that every secret opens.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write audit records out.
    Export {
        #[arg(long)]
        config: PathBuf,
        /// First date (YYYY-MM-DD, UTC) or Unix seconds.
        #[arg(long)]
        since: String,
        #[arg(long)]
        user: Option<String>,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Also check every record's signature with the configured keys: problems go to
        /// stderr, and the exit code is 1 if any record is unsigned or does not verify.
        #[arg(long)]
        verify: bool,
    },
    /// Check the signatures of exported or logged records (JSON lines, one record each).
    Verify {
        #[arg(long)]
        config: PathBuf,
        /// The file of records (`-`: standard input).
        #[arg(long)]
        file: PathBuf,
    },
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
        // Audit records as nested objects, not as strings inside the line.
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(mfa_gateway::audit::json_log::NestedAudit(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            ))
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
                    .and_then(|p| {
                        cfg.check_policy_roles(p.roles()).map_err(|e| {
                            mfa_gateway::run::StartError::Policy(format!(
                                "roles that are not in the policy file:\n{e}"
                            ))
                        })?;
                        if p.uses_webauthn() && cfg.webauthn.is_none() {
                            return Err(mfa_gateway::run::StartError::Policy(
                                "the policy counts passkeys (methods = [\"webauthn\"]) but the configuration has no [webauthn] section".into(),
                            ));
                        }
                        Ok(())
                    })
            }) {
                Ok(_) => {
                    println!("{}: configuration is valid", file.display());
                    println!("{}", cfg.vms.identity_note());
                    println!("{}", cfg.vms.session_before_login_note());
                    println!("{}", cfg.mail_note());
                    for w in &cfg.warnings {
                        println!("warning: {w}");
                    }
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
            // Requests are served on worker threads of their own (see `server`); this runtime
            // keeps the background work and the Redis connections.
            let rt = match runtime(Some(1)) {
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
        Command::GenToken => {
            let token = mfa_gateway::auth::crypto::random_token();
            let hash: String = mfa_gateway::auth::crypto::sha256(token.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            println!("token:  {token}");
            println!("sha256: {hash}");
            println!(
                "Give the token to the API client; put only the sha256 in admin.tokens: {{ name = \"...\", sha256 = \"{hash}\" }}"
            );
            ExitCode::SUCCESS
        }
        Command::Admin { config, command } => {
            with_store(&config, cli.log_format.as_deref(), |cfg, rt| {
                rt.block_on(admin_command(cfg, command))
            })
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    config,
                    since,
                    user,
                    format,
                    verify,
                },
        } => with_store(&config, cli.log_format.as_deref(), |cfg, rt| {
            rt.block_on(audit_export(cfg, &since, user.as_deref(), &format, verify))
        }),
        Command::Audit {
            command: AuditCommand::Verify { config, file },
        } => audit_verify_file(&config, &file),
    }
}

/// Loads the configuration and a runtime for the commands that talk to Redis directly.
fn with_store(
    config: &std::path::Path,
    log_format_cli: Option<&str>,
    f: impl FnOnce(Config, tokio::runtime::Runtime) -> ExitCode,
) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(format!("{} is not valid:\n{e}", config.display())),
    };
    // The audit records of these commands also go to the log (stderr), as the gateway's do:
    // kept outside Redis, so a restore cannot take them back (`admin reapply`). Text for a
    // person at a terminal, unless `--log-format json` asks for lines a log pipeline takes.
    let format = match log_format(log_format_cli, LogFormat::Text) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    init_logging(format, "warn,audit=info");
    mfa_gateway::tls::install_crypto_provider();
    match runtime(Some(1)) {
        Ok(rt) => f(cfg, rt),
        Err(e) => fail(format!("cannot start the runtime: {e}")),
    }
}

/// Who runs a command, for the audit trail: the user `sudo` was run by, else `$USER` or
/// `$LOGNAME`, else the name of the process's effective user (a service or a container often
/// has no `$USER`), else its uid.
fn os_user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(effective_user)
        .unwrap_or_else(|| "unknown".into())
}

/// The effective user's name from `/etc/passwd` (or `uid:N` when it has none there). The
/// owner of `/proc/self` is the process's effective user.
#[cfg(unix)]
fn effective_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid:{uid}")))
}

#[cfg(not(unix))]
fn effective_user() -> Option<String> {
    None
}

async fn admin_command(cfg: Config, command: AdminCommand) -> ExitCode {
    use mfa_gateway::admin::ops::{Actor, Ops};
    use mfa_gateway::audit::{ActorKind, Audit};
    let store =
        mfa_gateway::store::Store::Redis(mfa_gateway::store::redis::RedisStore::new(&cfg.redis));
    if let Err(e) = store.ping().await {
        return fail(format!("Redis does not answer: {e}"));
    }
    let policy = match mfa_gateway::policy::Policy::load(&cfg.policy.file) {
        Ok(p) => std::sync::Arc::new(p),
        Err(e) => return fail(e),
    };
    let keys = match mfa_gateway::run::key_ring(&cfg, false) {
        Ok(k) => Some(std::sync::Arc::new(k)),
        Err(e) => {
            eprintln!("warning: the audit records of this command are not signed: {e}");
            None
        }
    };
    let mut audit = Audit::new(store.clone(), cfg.admin.audit_max_records, keys.clone());
    // A reset from the command line is mailed like one from the pages: the job goes to the
    // outbox, and a running gateway sends it.
    if let Some(m) = &cfg.mail {
        let outbox = mfa_gateway::mail::Outbox::new(
            store.clone(),
            std::sync::Arc::new(mfa_gateway::metrics::Metrics::new()),
        );
        audit = audit.with_observer(mfa_gateway::mail::notify::Notifier::new(
            outbox,
            m.include_reset_reason,
        ));
    }
    let ops = Ops {
        audit,
        keys,
        store,
        policy,
        approval_max_age: cfg.mfa.approval_max_age,
        revocations: None,
        config: std::sync::Arc::new(cfg.clone()),
    };
    // The command line is an operator on the gateway host (who could change Redis directly):
    // not ranked by admin.can_reset.
    let actor = Actor {
        kind: ActorKind::Cli,
        name: format!("cli:{}", os_user()),
        client: None,
        rank: mfa_gateway::admin::ops::Rank::Unrestricted,
    };
    let now = mfa_gateway::clock::Clock::System.unix();
    let norm =
        |u: &str| mfa_gateway::config::normalize_username(u, cfg.vms.username_case_sensitive);
    let result = match command {
        AdminCommand::Status { user } => ops
            .status(&norm(&user), now)
            .await
            .map(|s| {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            })
            .map_err(mfa_gateway::admin::ops::OpError::from),
        AdminCommand::Reset { user, reason } => {
            if reason.trim().is_empty() {
                return fail("--reason must not be empty");
            }
            ops.reset(&norm(&user), &actor, reason.trim(), now).await.map(|done| {
                println!("MFA disconnected for {} (had an app: {}); their sessions end on every instance.", mfa_gateway::pages::visible_text(&norm(&user)), done.had);
                if let Some(code) = &done.code {
                    print_enrollment_code(code);
                }
            })
        }
        AdminCommand::EnrollmentCode { user } => ops
            .issue_enrollment_code(&norm(&user), &actor, now)
            .await
            .map(|code| {
                println!(
                    "New enrollment code for {}; the earlier one no longer works.",
                    mfa_gateway::pages::visible_text(&norm(&user))
                );
                print_enrollment_code(&code);
            }),
        AdminCommand::Reseal { dry_run } => return reseal(&cfg, &ops, &actor, dry_run, now).await,
        AdminCommand::Reapply {
            since,
            from,
            dry_run,
        } => return reapply(&cfg, &ops, &actor, &since, &from, dry_run, now).await,
        AdminCommand::Unlock { user } => ops.unlock(&norm(&user), &actor, now).await.map(|was| {
            println!(
                "{} unlocked (was locked: {was}).",
                mfa_gateway::pages::visible_text(&norm(&user))
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Prints a new enrollment code once, with what to tell the user.
fn print_enrollment_code(code: &mfa_gateway::admin::ops::IssuedCode) {
    println!(
        "Enrollment code: {}  (valid until {}, one use; shown only now)",
        code.grouped(),
        mfa_gateway::clock::timestamp_of(code.until)
    );
    println!(
        "Read it to the user on the phone: at the next sign-in they type it, then scan the QR code with the new phone."
    );
}

/// `admin reapply`: see `mfa_gateway::admin::reapply`.
async fn reapply(
    cfg: &Config,
    ops: &mfa_gateway::admin::ops::Ops,
    actor: &mfa_gateway::admin::ops::Actor,
    since: &str,
    from: &std::path::Path,
    dry_run: bool,
    now: u64,
) -> ExitCode {
    use mfa_gateway::admin::reapply;
    use std::io::Read as _;
    let since = match parse_since(since) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let keys = match mfa_gateway::run::key_ring(cfg, false) {
        Ok(k) => k,
        Err(e) => return fail(format!("the keys are needed to verify the records: {e}")),
    };
    let mut text = String::new();
    let read = if from.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read(from).map(|b| text = String::from_utf8_lossy(&b).into_owned())
    };
    if let Err(e) = read {
        return fail(format!("{}: {e}", from.display()));
    }
    let records = reapply::parse_records(&text);
    let lines = reapply::reapply(ops, records, since, &keys, actor, now, dry_run).await;
    let (report, ok) = reapply::render(&lines, dry_run);
    print!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `--since`: a date (YYYY-MM-DD, UTC) or Unix seconds.
fn parse_since(since: &str) -> Result<u64, String> {
    if let Ok(n) = since.parse::<u64>() {
        return Ok(n);
    }
    since
        .parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| u64::try_from(z.timestamp().as_second()).unwrap_or(0))
        .ok_or_else(|| format!("--since: a date (YYYY-MM-DD) or Unix seconds, not {since:?}"))
}

/// `admin reseal`: see `mfa_gateway::admin::reseal`.
async fn reseal(
    cfg: &Config,
    ops: &mfa_gateway::admin::ops::Ops,
    actor: &mfa_gateway::admin::ops::Actor,
    dry_run: bool,
    now: u64,
) -> ExitCode {
    use mfa_gateway::audit::{Event, Record};
    let keys = match mfa_gateway::run::key_ring(cfg, false) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let report = mfa_gateway::admin::reseal::reseal_all(&ops.store, &keys, dry_run).await;
    print!("{}", report.render(keys.active_id(), dry_run));
    // Recorded also when Redis failed midway: what was resealed before stays resealed.
    if !dry_run {
        let resealed = report.resealed_total();
        let from: Vec<String> = report
            .resealed
            .iter()
            .map(|(id, n)| format!("{id}:{n}"))
            .collect();
        let record =
            Record::new(Event::SecretsResealed, now, actor.kind, &actor.name).detail(format!(
                "to={} resealed={resealed} from={} unreadable={} busy={} complete={}",
                keys.active_id(),
                from.join(","),
                report.unreadable.len(),
                report.busy.len(),
                report.complete()
            ));
        ops.audit.record(record).await;
    }
    if report.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Counts of [`audit_check`]: valid, unsigned, invalid.
#[derive(Default)]
struct SignatureTally {
    valid: usize,
    missing: usize,
    invalid: usize,
}

impl SignatureTally {
    /// Checks one record; a problem is named on stderr (`line` is its position).
    fn check(
        &mut self,
        keys: &mfa_gateway::auth::crypto::KeyRing,
        r: &mfa_gateway::audit::Record,
        line: usize,
    ) {
        use mfa_gateway::audit::Signature;
        let what = |why: &str| {
            eprintln!(
                "record {line} ({} {} user={} actor={}): {why}",
                r.at,
                r.event.as_str(),
                r.user.as_deref().unwrap_or("-"),
                r.actor
            );
        };
        match r.verify(keys) {
            Signature::Valid => self.valid += 1,
            Signature::Missing => {
                what("not signed");
                self.missing += 1;
            }
            Signature::Invalid => {
                what(
                    "SIGNATURE DOES NOT MATCH: changed or made up (or signed with a key no longer configured)",
                );
                self.invalid += 1;
            }
        }
    }

    /// The summary on stderr and the exit code: 1 if anything is unsigned or invalid.
    fn finish(&self) -> ExitCode {
        eprintln!(
            "audit signatures: {} valid, {} not signed, {} not matching",
            self.valid, self.missing, self.invalid
        );
        if self.missing == 0 && self.invalid == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// `audit verify`: checks records from a file of JSON lines.
fn audit_verify_file(config: &std::path::Path, file: &std::path::Path) -> ExitCode {
    use std::io::BufRead as _;
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(format!("{} is not valid:\n{e}", config.display())),
    };
    let keys = match mfa_gateway::run::key_ring(&cfg, false) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let reader: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => return fail(format!("{}: {e}", file.display())),
        }
    };
    let mut tally = SignatureTally::default();
    for (i, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return fail(format!("{}: {e}", file.display())),
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<mfa_gateway::audit::Record>(&line) {
            Ok(r) => tally.check(&keys, &r, i + 1),
            Err(e) => {
                eprintln!("record {}: not an audit record: {e}", i + 1);
                tally.invalid += 1;
            }
        }
    }
    tally.finish()
}

async fn audit_export(
    cfg: Config,
    since: &str,
    user: Option<&str>,
    format: &str,
    verify: bool,
) -> ExitCode {
    use std::io::Write as _;
    let keys = if verify {
        match mfa_gateway::run::key_ring(&cfg, false) {
            Ok(k) => Some(k),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let since = match parse_since(since) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if format != "jsonl" && format != "csv" {
        return fail("--format: jsonl or csv");
    }
    let store =
        mfa_gateway::store::Store::Redis(mfa_gateway::store::redis::RedisStore::new(&cfg.redis));
    let records = match mfa_gateway::audit::export(&store, since, user).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut out = std::io::stdout().lock();
    if format == "csv" {
        let _ = writeln!(out, "{}", mfa_gateway::audit::Record::CSV_HEADER);
    }
    for r in &records {
        let line = if format == "csv" {
            r.csv_row()
        } else {
            serde_json::to_string(r).unwrap_or_default()
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(1);
        }
    }
    match keys {
        Some(keys) => {
            let mut tally = SignatureTally::default();
            for (i, r) in records.iter().enumerate() {
                tally.check(&keys, r, i + 1);
            }
            tally.finish()
        }
        None => ExitCode::SUCCESS,
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
