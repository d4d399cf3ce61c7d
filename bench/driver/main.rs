//! The benchmark's load driver and reporter, used by `bench/run`.
//!
//! wrk measures plain request throughput; everything wrk cannot do lives here, in Rust, so it
//! can use the gateway's own TOTP code and store format:
//!
//! * `seed`: enrolls many users directly in Redis (through the gateway's store API), so the
//!   MFA measurement needs no enrollment round trips and no user reuses a time step;
//! * `cookie`: logs one user in through the gateway (login, challenge page, code) and prints
//!   the `Cookie` header of the approved session, for the pass-through run;
//! * `mfa`: full login-with-challenge round trips, with the code request timed alone;
//! * `conns`: holds N idle keep-alive TLS connections and reads the servers' RSS;
//! * `stream`: one upload and one download of N bytes at once, sampling the gateway's RSS;
//! * `startup`: time from spawning the gateway to its first proxied 200;
//! * `report`: joins the parts into one table, the targets, and one JSON document.
//!
//! Every command talks to loopback only and is bounded in count and time.

mod conns;
mod mfa;
mod procfs;
mod report;
mod startup;
mod stream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `--name value` options of one command.
pub struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut it = args;
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got {a:?}"))?;
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            map.insert(name.to_string(), v);
        }
        Ok(Opts(map))
    }

    pub fn str(&self, name: &str) -> Result<&str, String> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required"))
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn path(&self, name: &str) -> Result<PathBuf, String> {
        self.str(name).map(PathBuf::from)
    }

    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: not a number: {v:?}")),
        }
    }

    /// The target base URL; only loopback addresses are accepted.
    pub fn loopback_url(&self, name: &str) -> Result<String, String> {
        let url = self.str(name)?.trim_end_matches('/').to_string();
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("");
        let loopback = host.starts_with("127.")
            || host.starts_with("localhost:")
            || host == "localhost"
            || host.starts_with("[::1]");
        if loopback {
            Ok(url)
        } else {
            Err(format!(
                "--{name}: only loopback targets are allowed, not {url}"
            ))
        }
    }
}

/// The TOTP secret of a benchmark user: derived from the name, so `seed` and `mfa` agree
/// without sharing state.
pub fn user_secret(user: &str) -> Vec<u8> {
    let d = mfa_gateway::auth::crypto::sha256(format!("mfa-gateway bench user {user}").as_bytes());
    d.get(..20).map(<[u8]>::to_vec).unwrap_or_default()
}

pub fn user_name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}")
}

/// An HTTP/1.1 client that trusts the benchmark CA and follows no redirects.
pub fn client(ca: &Path, max_idle: usize) -> Result<reqwest::Client, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(max_idle)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// Writes a JSON value to `--out` (and prints it).
pub fn emit(opts: &Opts, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    if let Some(out) = opts.opt("out") {
        std::fs::write(out, &text).map_err(|e| format!("{out}: {e}"))?;
    }
    println!("{text}");
    Ok(())
}

/// Percentile of sorted samples (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or(0.0)
}

async fn dispatch(cmd: &str, opts: Opts) -> Result<(), String> {
    match cmd {
        "seed" => mfa::seed(&opts).await,
        "cookie" => mfa::cookie(&opts).await,
        "mfa" => mfa::round_trips(&opts).await,
        "conns" => conns::run(&opts).await,
        "stream" => stream::run(&opts).await,
        "startup" => startup::run(&opts).await,
        "report" => report::run(&opts),
        _ => Err(format!(
            "unknown command {cmd:?} (seed, cookie, mfa, conns, stream, startup, report)"
        )),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(cmd) = args.next() else {
        eprintln!("usage: bench-driver COMMAND [--option value ...]");
        return ExitCode::from(2);
    };
    let opts = match Opts::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-driver: {e}");
            return ExitCode::from(2);
        }
    };
    mfa_gateway::tls::install_crypto_provider();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-driver: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(&cmd, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-driver {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
