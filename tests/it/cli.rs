//! The binary's command line: configuration errors and the policy commands.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfa-gateway"))
}

#[test]
fn check_config_names_the_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(&f, "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n[upstream]\nurl = \"ftp://x\"\n[server]\nlisten = \"nowhere\"\n").unwrap();
    let out = bin().arg("check-config").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.cert: file not found: /nonexistent/cert.pem"),
        "{err}"
    );
    assert!(
        err.contains("upstream.url: scheme must be http or https"),
        "{err}"
    );
    assert!(err.contains("server.listen: not an address"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sentinel_settings_that_cannot_mean_what_they_say_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let check = |redis: &str| {
        let f = dir.path().join("g.toml");
        std::fs::write(&f, format!("[redis]\n{redis}\n")).unwrap();
        let out = bin()
            .env("MFA_TEST_SENTINEL_PASSWORD", "x")
            .arg("check-config")
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(
        "mode = \"sentinel\"\nsentinel_master = \"m\"\n\
         nodes = [\"rediss://a:26379\", \"redis://b:26379\"]",
    );
    assert!(
        err.contains("redis.nodes: in sentinel mode every sentinel URL is rediss://"),
        "{err}"
    );
    let err = check(
        "url = \"redis://127.0.0.1:6379/0\"\n\
         sentinel_password = { env = \"MFA_TEST_SENTINEL_PASSWORD\" }",
    );
    assert!(
        err.contains("redis.sentinel_password: only meaningful in sentinel mode"),
        "{err}"
    );
}

#[test]
fn url_session_parameters_must_be_names() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(
        &f,
        "[vms]\nsession_cookies = [\"JSESSIONID\"]\nurl_session_params = [\"jsessionid\", \"a=b\", \"\"]\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vms.url_session_params[1]: not a parameter name: \"a=b\""),
        "{err}"
    );
    assert!(err.contains("vms.url_session_params[2]"), "{err}");
    assert!(!err.contains("url_session_params[0]"), "{err}");
}

#[test]
fn readiness_parts_must_be_known() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(&f, "[server]\nready_requires = [\"store\", \"redis\"]\n").unwrap();
    let out = bin().arg("check-config").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "server.ready_requires[1]: \"upstream\", \"store\" or \"policy\", not \"redis\""
        ),
        "{err}"
    );
    assert!(!err.contains("ready_requires[0]"), "{err}");
}

#[test]
fn unknown_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(
        &f,
        "[upsteam]\nurl = \"http://x\"\n[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n\
         [mfa]\nwindow = \"one\"\nkeys = [{ id = \"a\", fil = \"k\" }]\n\
         [[vms.login]]\nmethod = \"POST\"\npth = \"/x\"\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // Every wrong key, one line each, by its path.
    for line in [
        "upsteam: unknown key (expected one of `version`, `server`",
        "server.lisen: unknown key (expected one of `listen`",
        "mfa.window: invalid type: string \"one\", expected u8",
        "mfa.keys[0].fil: unknown key (expected one of `id`, `file`, `env`, `value`)",
        "vms.login[0].pth: unknown key (expected one of `method`, `path`",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(line)),
            "{line:?} in:\n{err}"
        );
    }
    assert_eq!(
        err.lines().count(),
        6,
        "a heading and one line per key:\n{err}"
    );
}

#[test]
fn example_config_is_valid_apart_from_its_files() {
    // The example names production paths; check that it parses with no unknown keys.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/gateway.example.toml"
    ))
    .unwrap();
    let parsed: Result<mfa_gateway::config::file::FileConfig, _> = toml::from_str(&text);
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[test]
fn policy_show_prints_the_matrix_for_a_date() {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml");
    let out = bin()
        .args(["policy", "show", "--at", "2021-12-01", "--file", policy])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("msp") && text.contains("available"), "{text}");
    assert!(
        text.lines()
            .filter(|l| l.starts_with("msp") || l.starts_with("customer"))
            .all(|l| l.contains("available")),
        "{text}"
    );
    let out = bin()
        .args(["policy", "show", "--at", "2022-01-01", "--file", policy])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("enforced"));
    let out = bin().args(["policy", "check", policy]).output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    // Remembered browsers, per role, in the phase in effect.
    assert!(
        String::from_utf8_lossy(&out_at(policy, "2022-01-01").stdout)
            .contains("Remember browser: off for every role\n")
    );
    let remembering = dir.path().join("remember.toml");
    let shipped = std::fs::read_to_string(policy).unwrap();
    std::fs::write(
        &remembering,
        format!("{shipped}\n[phase.remember_browser_days]\ncustomer = 30\nadministrator = 1\n"),
    )
    .unwrap();
    let at = |date: &str| {
        String::from_utf8_lossy(&out_at(remembering.to_str().unwrap(), date).stdout).to_string()
    };
    assert!(
        at("2022-01-01").contains("Remember browser: administrator 1 day, customer 30 days\n"),
        "{}",
        at("2022-01-01")
    );
    assert!(at("2021-12-01").contains("Remember browser: off for every role\n"));
    let bad = dir.path().join("p.toml");
    std::fs::write(&bad, "timezone = \"Mars/Olympus\"\n").unwrap();
    let out = bin().args(["policy", "check"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
}

/// `policy show --at DATE --file FILE`.
fn out_at(file: &str, date: &str) -> std::process::Output {
    let out = bin()
        .args(["policy", "show", "--at", date, "--file", file])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

#[test]
fn a_secret_file_that_never_ends_is_refused_not_read_forever() {
    // `/dev/zero` would never end; a secret file is read up to 64 KiB and refused beyond.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(
        &f,
        "[redis]\nurl = \"redis://127.0.0.1:1\"\npassword = { file = \"/dev/zero\" }\n",
    )
    .unwrap();
    let mut cmd = bin();
    cmd.arg("check-config")
        .arg(&f)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = crate::support::run_bounded(cmd, std::time::Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("redis.password: cannot read secret file /dev/zero: larger than 65536 bytes"),
        "{err}"
    );
}

#[test]
fn identity_settings_must_fit_the_role_source() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("g.toml");
    std::fs::write(
        &f,
        "[vms]\nsession_cookies = [\"S\"]\ntyped_username = \"sometimes\"\n\
         [vms.role]\nsource = \"userinfo\"\nuserinfo_path = \"/me\"\nuserinfo_role_pointer = \"/r\"\n\
         user_header = \"X-User\"\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vms.typed_username: \"must_match\" or \"ignore\", not \"sometimes\""),
        "{err}"
    );
    assert!(
        err.contains("vms.role.user_header: only with source = \"header\""),
        "{err}"
    );
}

/// Every `mfa-gateway` command line shown in a code block of the docs parses: it is run with
/// `--help` added, which clap answers (exit 0) only when every subcommand and option before it
/// exists; nothing is executed.
#[test]
fn every_documented_command_line_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("certs/README.md")];
    for dir in ["docs", "deploy", "bench"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "md") {
                    files.push(p);
                }
            }
        }
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for f in files.iter().filter(|f| f.exists()) {
        let text = std::fs::read_to_string(f).unwrap();
        let mut in_block = false;
        // A command continued with `\` is read as one line.
        let mut pending = String::new();
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
                pending.clear();
                continue;
            }
            if !in_block {
                continue;
            }
            let line = line.trim();
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let whole = std::mem::take(&mut pending) + line;
            let Some(args) = documented_args(&whole) else {
                continue;
            };
            let out = bin().args(&args).arg("--help").output().unwrap();
            checked += 1;
            if !out.status.success() {
                failures.push(format!(
                    "{}: `{whole}`: {}",
                    f.strip_prefix(root).unwrap().display(),
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                ));
            }
        }
    }
    assert!(checked >= 20, "only {checked} command lines found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The arguments of a documented `mfa-gateway` invocation (after a prompt, `sudo -u x`, a path
/// or `cargo run --release --`), up to the first shell operator; `None` for other lines.
fn documented_args(line: &str) -> Option<Vec<String>> {
    let line = line.trim_start_matches("$ ").trim();
    let words = shell_words(line);
    let start = words
        .iter()
        .position(|w| w == "mfa-gateway" || w.ends_with("/mfa-gateway") || w == "--")?;
    let before = &words[..start];
    // Only real invocations: the binary at the start (after sudo, env or a prompt), or
    // `cargo run ... --`.
    let prefix_ok = before.iter().all(|w| {
        ["sudo", "-u", "cargo", "run", "--release", "exec", "env"].contains(&w.as_str())
            || w.starts_with("mfa-gateway")
            || w.contains('=')
            || w.starts_with("/")
    });
    if !prefix_ok || (words[start] == "--" && !before.contains(&"cargo".to_string())) {
        return None;
    }
    let args: Vec<String> = words[start + 1..]
        .iter()
        .take_while(|w| {
            !["|", ">", ">>", "&&", "||", ";", "2>&1", "<", "&"].contains(&w.as_str())
                && !w.starts_with('#')
        })
        .cloned()
        .collect();
    // Prose that mentions the binary ("mfa-gateway listening") is not a command.
    let first = args.first()?;
    let known = [
        "run",
        "check-config",
        "demo",
        "policy",
        "gen-key",
        "gen-token",
        "admin",
        "audit",
        "--config",
        "--log-format",
        "--help",
        "--version",
    ];
    known.contains(&first.as_str()).then_some(args)
}

/// Splits a command line into words as a shell would for simple quoting.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}
