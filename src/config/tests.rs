//! Unit tests of the configuration that are not one rule each (those are in `rules`):
//! defaults, the model's own methods, warnings, and the second stage against the policy roles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;

use super::*;

/// A demo configuration with `vms_extra` added to its `[vms]` table.
fn with_vms(vms_extra: &str) -> Result<Config, ConfigErrors> {
    with_sections("", vms_extra, "")
}

/// [`with_vms`] with `role_extra` added to the `[vms.role]` table.
fn with_vms_role(vms_extra: &str, role_extra: &str) -> Result<Config, ConfigErrors> {
    with_sections("", vms_extra, role_extra)
}

/// A demo configuration with additions to its `[upstream]`, `[vms]` and `[vms.role]`
/// tables.
fn with_sections(
    upstream_extra: &str,
    vms_extra: &str,
    role_extra: &str,
) -> Result<Config, ConfigErrors> {
    test_config::load(&test_config::Extra {
        upstream: upstream_extra,
        vms: vms_extra,
        role: role_extra,
        ..Default::default()
    })
}

#[cfg(unix)]
#[test]
fn secret_files_others_can_read_are_warned_about_by_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k1.key");
    std::fs::write(
        &key,
        crate::auth::crypto::generate_key_material().as_bytes(),
    )
    .unwrap();
    let keys = format!(r#"keys = [{{ id = "k1", file = "{}" }}]"#, key.display());
    let load = |mode: u32| {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        test_config::load(&test_config::Extra {
            keys: Some(&keys),
            ..Default::default()
        })
    };
    for (mode, warned) in [(0o600, false), (0o640, false), (0o644, true), (0o606, true)] {
        let cfg = load(mode).unwrap();
        assert_eq!(
            cfg.warnings.iter().any(|w| w.starts_with("mfa.keys[0]: ")),
            warned,
            "mode {mode:o}: {:?}",
            cfg.warnings
        );
    }
}

#[test]
fn a_bad_redis_url_is_named_by_the_key_it_was_written_under() {
    let text = |redis: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n[redis]\n{redis}\n"
        )
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/config-test.toml");
    let errors = |redis: &str| {
        Config::from_toml(&text(redis), &path, Mode::Demo)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = errors("url = \"redsi://127.0.0.1:6379/0\"");
    assert!(e.contains("redis.url: not a redis://"), "{e}");
    assert!(!e.contains("redis.nodes"), "{e}");
    let e = errors("mode = \"cluster\"\nnodes = [\"redis://a:1\", \"http://b:2\"]");
    assert!(e.contains("redis.nodes[1]: not a redis://"), "{e}");
}

#[test]
fn strip_response_headers_default_empty_and_own_list() {
    let names = |c: Config| -> Vec<String> {
        c.upstream
            .strip_response_headers
            .iter()
            .map(|h| h.as_str().to_string())
            .collect()
    };
    assert_eq!(
        names(with_vms("").unwrap()),
        [
            "server",
            "x-powered-by",
            "x-aspnet-version",
            "x-aspnetmvc-version"
        ]
    );
    let none = with_sections("strip_response_headers = []", "", "").unwrap();
    assert!(names(none).is_empty());
    let own = with_sections(
        r#"strip_response_headers = ["X-Powered-By", "x-powered-by", "Via"]"#,
        "",
        "",
    )
    .unwrap();
    assert_eq!(names(own), ["x-powered-by", "via"]);
}

#[test]
fn strip_response_headers_are_validated() {
    for (list, want) in [
        (
            r#"["Server", "a b"]"#,
            "upstream.strip_response_headers[1]: not a header name",
        ),
        (r#"["Set-Cookie"]"#, "upstream.strip_response_headers[0]"),
        (
            r#"["content-length"]"#,
            "upstream.strip_response_headers[0]",
        ),
        (r#"["X-VMS-Role"]"#, "which vms.role reads"),
    ] {
        let err = with_sections(&format!("strip_response_headers = {list}"), "", "")
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{list}: {err}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("\"x-h{i}\"")).collect();
    let err = with_sections(
        &format!("strip_response_headers = [{}]", many.join(", ")),
        "",
        "",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at most 64"), "{err}");
}

/// A demo configuration with `admin` as its `[admin]` table.
fn with_admin(admin: &str) -> Result<Config, ConfigErrors> {
    test_config::load(&test_config::Extra {
        admin,
        ..Default::default()
    })
}

const POLICY_ROLES: [&str; 6] = [
    "administrator",
    "msp",
    "customer",
    "supplier",
    "contractor",
    "resource",
];

#[test]
fn can_reset_ranks_roles_and_defaults_to_msp_below_administrator() {
    let roles = POLICY_ROLES.map(String::from);
    let cfg = with_admin("").unwrap();
    assert!(cfg.check_policy_roles(&roles).is_ok());
    let a = &cfg.admin;
    for t in ["customer", "supplier", "contractor", "resource", "msp"] {
        assert!(a.may_reset("msp", Some(t)), "msp may reset {t}");
    }
    assert!(!a.may_reset("msp", Some("administrator")));
    assert!(
        !a.may_reset("msp", None),
        "an unknown role is not below msp"
    );
    assert!(a.may_reset("administrator", Some("administrator")));
    assert!(a.may_reset("administrator", None));
    assert!(!a.may_reset("customer", Some("customer")));

    let cfg =
        with_admin(r#"can_reset = { msp = ["customer"], administrator = ["msp", "customer"] }"#)
            .unwrap();
    assert!(cfg.check_policy_roles(&roles).is_ok());
    assert!(!cfg.admin.may_reset("msp", Some("supplier")));
    assert!(!cfg.admin.may_reset("administrator", Some("administrator")));
}

/// Issue 22, bug 3: a role-map target or a static-file role that is not a policy role
/// (`Resource = "resources"`) is an error, not users silently sent to enrollment.
#[test]
fn role_map_targets_and_static_roles_must_be_policy_roles() {
    let roles = POLICY_ROLES.map(String::from);
    let mut cfg = with_admin("").unwrap();
    cfg.vms.role_map = [
        ("Resource".to_string(), "resources".to_string()),
        ("Vendor".to_string(), "Supplier".to_string()),
        ("Staff".to_string(), "customer".to_string()),
    ]
    .into();
    let e = cfg.check_policy_roles(&roles).unwrap_err();
    let text = e.to_string();
    let keys: Vec<&str> = e.errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["vms.role.map.Resource", "vms.role.map.Vendor"],
        "{text}"
    );
    assert!(text.contains("\"resources\" is not a role"), "{text}");
    assert!(text.contains("did you mean \"supplier\""), "{text}");
    cfg.vms.role_map = [("Staff".to_string(), "customer".to_string())].into();
    assert!(cfg.check_policy_roles(&roles).is_ok());
    cfg.vms.role_source = RoleSource::Static {
        path: PathBuf::from("roles.csv"),
        users: [
            ("alice".to_string(), "staff".to_string()),
            ("bob".to_string(), "Supplier".to_string()),
            ("carol".to_string(), "contracter".to_string()),
        ]
        .into(),
    };
    let e = cfg.check_policy_roles(&roles).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].0, "vms.role.static_file");
    assert!(e.errors[0].1.contains("\"contracter\""), "{e}");
}

#[test]
fn admin_roles_must_be_policy_roles_and_tokens_need_a_rank() {
    let roles = POLICY_ROLES.map(String::from);
    let hash = "0".repeat(64);
    let cfg = with_admin(&format!(
        r#"roles = ["msp", "admins"]
can_reset = {{ msp = ["custmer", "*"], superuser = ["msp"] }}
tokens = [{{ name = "desk", sha256 = "{hash}", role = "superuser" }}]"#
    ))
    .unwrap();
    let e = cfg.check_policy_roles(&roles).unwrap_err();
    let keys: Vec<&str> = e.errors.iter().map(|(k, _)| k.as_str()).collect();
    for key in [
        "admin.roles[1]",
        "admin.can_reset.msp[0]",
        "admin.can_reset.superuser",
        "admin.tokens[0].role",
    ] {
        assert!(keys.contains(&key), "{key} in {e}");
    }
    assert_eq!(keys.len(), 4, "{e}");
    // A token whose role may reset nobody is refused at once.
    let e = with_admin(&format!(
        r#"tokens = [{{ name = "desk", sha256 = "{hash}", role = "customer" }}]"#
    ))
    .unwrap_err();
    assert!(
        e.errors.iter().any(|(k, _)| k == "admin.tokens[0].role"),
        "{e}"
    );
    // Without a role a token acts as an MSP.
    let cfg = with_admin(&format!(
        r#"tokens = [{{ name = "desk", sha256 = "{hash}" }}]"#
    ))
    .unwrap();
    assert_eq!(cfg.admin.tokens[0].role, "msp");
    let e = with_admin(r#"can_reset = { msp = "customer" }"#).unwrap_err();
    assert!(!e.errors.is_empty());
}

#[test]
fn enrollment_times_quiet_period_and_helpdesk_are_checked() {
    let with_mfa = |mfa: &str| {
        test_config::load(&test_config::Extra {
            mfa,
            ..Default::default()
        })
    };
    let errors = |mfa: &str| {
        with_mfa(mfa)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = errors("challenge_ttl = \"10m\"\nenrollment_ttl = \"5m\"");
    assert!(
        e.contains("mfa.enrollment_ttl: between mfa.challenge_ttl and 2h"),
        "{e}"
    );
    let e = errors("pending_enrollment_ttl = \"60d\"");
    assert!(e.contains("mfa.pending_enrollment_ttl"), "{e}");
    let e = errors("offer_quiet_period = \"400d\"");
    assert!(e.contains("mfa.offer_quiet_period"), "{e}");
    let e = errors("helpdesk_name = \"  \"");
    assert!(e.contains("mfa.helpdesk_name"), "{e}");
    let e = errors("helpdesk_name = \"desk\\u001b[31m\"");
    assert!(e.contains("mfa.helpdesk_name"), "{e}");
    let cfg = with_mfa("").unwrap();
    assert_eq!(cfg.mfa.enrollment_ttl, Duration::from_secs(1800));
    assert_eq!(cfg.mfa.pending_enrollment_ttl, Duration::from_secs(86400));
    assert_eq!(cfg.mfa.offer_quiet_period, Duration::from_secs(30 * 86400));
    assert_eq!(cfg.mfa.helpdesk_name, None);
    let cfg =
        with_mfa("helpdesk_name = \" Acme Servicedesk \"\noffer_quiet_period = \"0s\"").unwrap();
    assert_eq!(cfg.mfa.helpdesk_name.as_deref(), Some("Acme Servicedesk"));
    assert_eq!(cfg.mfa.offer_quiet_period, Duration::ZERO);
}

#[test]
fn allow_body_on_takes_methods_without_a_body_and_exact_paths() {
    let cfg = with_vms(
        r#"allow_body_on = [{ method = "delete", path = "/api/items" }, { method = "GET", path = "/search" }]"#,
    )
    .unwrap();
    assert_eq!(
        cfg.vms.allow_body_on,
        vec![
            BodyAllowed {
                method: Method::DELETE,
                path: "/api/items".into()
            },
            BodyAllowed {
                method: Method::GET,
                path: "/search".into()
            },
        ]
    );
    assert!(with_vms("").unwrap().vms.allow_body_on.is_empty());
}

#[test]
fn allow_body_on_entries_are_validated() {
    for (entry, key) in [
        (
            r#"{ method = "POST", path = "/x" }"#,
            "vms.allow_body_on[0].method",
        ),
        (
            r#"{ method = "*", path = "/x" }"#,
            "vms.allow_body_on[0].method",
        ),
        (r#"{ path = "/x" }"#, "vms.allow_body_on[0].method"),
        (r#"{ method = "GET" }"#, "vms.allow_body_on[0].path"),
        (
            r#"{ method = "GET", path = "x" }"#,
            "vms.allow_body_on[0].path",
        ),
        (
            r#"{ method = "GET", path = "/x?y=1" }"#,
            "vms.allow_body_on[0].path",
        ),
    ] {
        let errors = with_vms(&format!("allow_body_on = [{entry}]")).unwrap_err();
        assert!(
            errors.errors.iter().any(|(k, _)| k == key),
            "{entry}: {errors}"
        );
    }
    let unknown = with_vms(r#"allow_body_on = [{ method = "GET", path = "/x", body = 1 }]"#);
    assert!(unknown.is_err());
}

#[test]
fn sessions_before_login_are_chosen_and_validated() {
    const END: &str = "end_session = { method = \"GET\", path = \"/logout\" }";
    let cfg = with_vms("").unwrap();
    assert_eq!(cfg.vms.session_before_login, SessionBeforeLogin::None);
    assert!(cfg.vms.session_before_login_note().contains("none"));
    for (v, want) in [
        ("rotates", SessionBeforeLogin::Rotates),
        ("same_id", SessionBeforeLogin::SameId),
    ] {
        let cfg = with_vms_role(
            &format!("session_before_login = \"{v}\"\npre_login_ttl = \"15m\"\n{END}"),
            "user_header = \"X-VMS-User\"",
        )
        .unwrap();
        assert_eq!(cfg.vms.session_before_login, want);
        assert_eq!(cfg.vms.pre_login_ttl, Duration::from_secs(900));
        assert!(cfg.vms.session_before_login_note().contains(v));
    }
    let defaulted = with_vms_role(
        "session_before_login = \"rotates\"",
        "user_header = \"X-VMS-User\"",
    )
    .unwrap();
    assert_eq!(defaulted.vms.pre_login_ttl, Duration::from_secs(1800));
    let key_of = |r: Result<Config, ConfigErrors>| -> Vec<String> {
        r.unwrap_err()
            .errors
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    };
    assert_eq!(
        key_of(with_vms("session_before_login = \"sometimes\"")),
        vec!["vms.session_before_login"]
    );
    // Whether anybody is signed in must come from the VMS, on any answer.
    assert_eq!(
        key_of(with_vms(&format!(
            "session_before_login = \"same_id\"\n{END}"
        ))),
        vec!["vms.session_before_login"]
    );
    // A same-id session signed in as somebody else is ended with vms.end_session.
    assert_eq!(
        key_of(with_vms_role(
            "session_before_login = \"same_id\"",
            "user_header = \"X-VMS-User\"",
        )),
        vec!["vms.session_before_login"]
    );
    assert_eq!(
        key_of(with_vms_role(
            &format!("session_before_login = \"same_id\"\npre_login_ttl = \"10s\"\n{END}"),
            "user_header = \"X-VMS-User\"",
        )),
        vec!["vms.pre_login_ttl"]
    );
}

#[test]
fn user_names_fold_by_nfkc_and_unicode_case_folding() {
    assert_eq!(normalize_username("  Kate ", false), "kate");
    assert_eq!(
        normalize_username("\u{212a}ate", false),
        "kate",
        "Kelvin sign"
    );
    assert_eq!(
        normalize_username("\u{ff43}\u{ff55}\u{ff53}\u{ff54}\u{ff11}", false),
        "cust1",
        "fullwidth"
    );
    assert_eq!(
        normalize_username("STRASSE", false),
        normalize_username("straße", false)
    );
    assert_eq!(normalize_username("ﬁona", false), "fiona", "ligature");
    // Case-sensitive names keep their case, still in NFKC.
    assert_eq!(normalize_username("\u{212a}ate", true), "Kate");
    assert_eq!(normalize_username("Kate", true), "Kate");
}

/// The test configuration with `mfa` lines, `role` lines and `[mail]` (after `[admin]`).
fn with_mail(mfa: &str, role: &str, mail: &str) -> Result<Config, ConfigErrors> {
    let admin = format!("\n[mail]\n{mail}");
    test_config::load(&test_config::Extra {
        mfa,
        role,
        admin: if mail.is_empty() { "" } else { &admin },
        ..Default::default()
    })
}

#[test]
fn mail_is_off_without_its_section_and_check_config_says_how_it_is_sent() {
    let cfg = with_mail("", "", "").unwrap();
    assert!(cfg.mail.is_none());
    assert_eq!(cfg.mfa.first_enrollment, FirstEnrollment::Open);
    assert_eq!(cfg.vms.email_source, None);
    assert!(
        cfg.mail_note()
            .starts_with("notifications by e-mail: off (no [mail] section)"),
        "{}",
        cfg.mail_note()
    );
    let cfg = with_mail(
        "first_enrollment = \"email_code\"",
        "email_header = \"X-VMS-Email\"",
        "host = \"smtp.example.test\"\nfrom = \"VMS <mfa@example.test>\"\nusername = \"gw\"\npassword = { env = \"PATH\" }",
    )
    .unwrap();
    let m = cfg.mail.as_ref().unwrap();
    assert_eq!((m.port, m.security), (587, MailSecurity::StartTls));
    assert_eq!(
        (m.max_attempts, m.retry_after),
        (10, Duration::from_secs(30))
    );
    assert!(!m.include_reset_reason);
    assert!(
        !format!("{m:?}").contains(&std::env::var("PATH").unwrap()),
        "password redacted"
    );
    assert_eq!(cfg.mfa.first_enrollment, FirstEnrollment::EmailCode);
    let note = cfg.mail_note();
    assert!(
        note.contains("on, via smtp.example.test:587 (starttls) from VMS <mfa@example.test>")
            && note.contains("x-vms-email")
            && note.contains("a code sent by e-mail"),
        "{note}"
    );
    let tls = with_mail(
        "",
        "",
        "host = \"smtp.example.test\"\nsecurity = \"tls\"\nfrom = \"m@example.test\"",
    )
    .unwrap();
    assert_eq!(tls.mail.unwrap().port, 465);
    // Addresses of the static map are kept under the normalised user name.
    let cfg = with_mail(
        "",
        "[vms.role.email_map]\nAlice = \"alice@example.test\"",
        "",
    )
    .unwrap();
    let Some(EmailSource::Static(m)) = cfg.vms.email_source else {
        unreachable!("a static map: {:?}", cfg.vms.email_source)
    };
    assert_eq!(
        m.get("alice").map(String::as_str),
        Some("alice@example.test")
    );
}
