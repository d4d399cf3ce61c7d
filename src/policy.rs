//! The dated MFA policy: which VMS role gets which MFA state on which day.
//!
//! MFA is rolled out in phases ("available from November, enforced from January"), so the
//! gateway does not hard-code states per role. It reads them from a separate TOML file
//! (`config/policy.toml`) that lists phases with a start date; the next rollout step is an
//! edit of that file, not a new release.
//!
//! # How a decision is made
//!
//! ```text
//!   now (Timestamp) --[policy time zone]--> local date
//!
//!   local date:   ... 2021-10-31 | 2021-11-01 ... 2021-12-31 | 2022-01-01 ...
//!   phase:         (none)        | phase[1]                  | phase[2]
//!   msp:           none          | available                 | enforced (+ grace?)
//! ```
//!
//! The phase in effect on a date is the last one whose `from` date is on or before it; a
//! phase starts at local midnight in the file's time zone. Before the first phase every
//! role is [`MfaState::None`]. A role the file does not list has no decision at all
//! ([`Policy::decide`] returns `None`) so that the caller applies its configured fallback
//! instead of silently treating an unknown role as "no MFA".
//!
//! # Grace
//!
//! A phase may carry a `[phase.grace]` table that applies to the roles it enforces: a user
//! without an authenticator may postpone enrollment until a date (inclusive) and/or for a
//! number of logins. When both are set, both limits apply: the first one used up ends it.
//!
//! # Remembered browsers
//!
//! A phase may carry a `[phase.remember_browser_days]` table: for the roles it lists, a user
//! who typed a correct code may tick "don't ask for a code on this browser for N days", and
//! the next sign-ins in that browser skip the code step (see `mfa::remember`). Roles not
//! listed get 0 (off). The number is read again at every use, so a later phase with fewer
//! days (or 0) shortens or ends what was remembered under an earlier one.
//!
//! # Methods
//!
//! A phase may carry a `[phase.methods]` table: per role, the second factors that count
//! (`["totp"]`, `["webauthn"]` for passkeys and security keys, or both). Roles not listed get
//! `["totp"]`, so a policy without the table behaves as before passkeys existed. A user whose
//! role moves to a method the user has not set up sets it up at the next sign-in (with the
//! phase's grace, if any). Recovery codes count whatever the methods.
//!
//! # Loading
//!
//! The file is parsed in two stages: strict file structs (`deny_unknown_fields`, so a typo
//! is an error rather than a silently ignored key) and then validation into [`Policy`], with
//! errors that name the offending key (`phase[2].roles: role "msp" missing`). Phases are
//! numbered from 1 in file order in those messages.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;

/// Longest role id accepted in the policy file.
const MAX_ROLE_ID_LEN: usize = 32;
/// Most days a browser may be remembered for (`remember_browser_days`).
pub const MAX_REMEMBER_DAYS: u32 = 365;

/// MFA state of a role in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MfaState {
    /// MFA is not offered; logins pass through unchanged.
    None,
    /// Users may connect an authenticator app (opt-in).
    Available,
    /// Every login needs a TOTP code; users without one are taken through enrollment.
    Enforced,
}

impl MfaState {
    /// The id used in the policy file and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaState::None => "none",
            MfaState::Available => "available",
            MfaState::Enforced => "enforced",
        }
    }
}

impl fmt::Display for MfaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not `none`, `available` or `enforced`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}: expected none, available or enforced")]
pub struct UnknownMfaState(pub String);

impl FromStr for MfaState {
    type Err = UnknownMfaState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(MfaState::None),
            "available" => Ok(MfaState::Available),
            "enforced" => Ok(MfaState::Enforced),
            other => Err(UnknownMfaState(other.to_owned())),
        }
    }
}

/// How long a user of an enforced role may postpone enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    /// Last local date (inclusive) on which enrollment may still be postponed.
    pub enroll_by: Option<Date>,
    /// How many logins in total a user may postpone enrollment.
    pub postpone_logins: Option<u32>,
}

impl Grace {
    /// Whether a user who has postponed `postponed_so_far` times may postpone once more on
    /// local date `today`. Every limit that is set must still allow it; a grace with no
    /// limit set allows nothing (validation never produces one).
    pub fn may_postpone(&self, today: Date, postponed_so_far: u32) -> bool {
        if self.enroll_by.is_none() && self.postpone_logins.is_none() {
            return false;
        }
        let date_ok = self.enroll_by.is_none_or(|last| today <= last);
        let count_ok = self.postpone_logins.is_none_or(|n| postponed_so_far < n);
        date_ok && count_ok
    }

    /// Human description for `policy show` on local date `on`.
    fn describe(&self, on: Date) -> String {
        if let Some(last) = self.enroll_by
            && last < on
        {
            return format!("ended after {last}: enrollment at next login");
        }
        let date = self.enroll_by.map(|d| format!("until {d} (inclusive)"));
        let count = self.postpone_logins.map(|n| {
            let noun = if n == 1 { "login" } else { "logins" };
            format!("for at most {n} {noun}")
        });
        match (date, count) {
            (Some(d), Some(c)) => format!("may postpone enrollment {d} and {c}"),
            (Some(d), None) => format!("may postpone enrollment {d}"),
            (None, Some(c)) => format!("may postpone enrollment {c}"),
            (None, None) => "no postponement".to_owned(),
        }
    }
}

/// The second factors that count for a role (`[phase.methods]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct MfaMethods {
    /// A code from an authenticator app (TOTP).
    pub totp: bool,
    /// A passkey or security key (WebAuthn).
    pub webauthn: bool,
}

impl MfaMethods {
    /// The methods that count on a gateway that is (`webauthn`) or is not a WebAuthn relying
    /// party: a policy reloaded to count passkeys on a gateway without `[webauthn]` (start-up
    /// refuses that) counts codes instead, still a second factor.
    pub fn usable(self, webauthn: bool) -> MfaMethods {
        if self.webauthn && !webauthn {
            MfaMethods::TOTP
        } else {
            self
        }
    }

    /// The default: codes only.
    pub const TOTP: MfaMethods = MfaMethods {
        totp: true,
        webauthn: false,
    };

    /// As the policy file and `policy show` write them: `totp`, `webauthn`, `totp, webauthn`.
    pub fn describe(self) -> &'static str {
        match (self.totp, self.webauthn) {
            (true, true) => "totp, webauthn",
            (false, true) => "webauthn",
            _ => "totp",
        }
    }
}

impl Default for MfaMethods {
    fn default() -> Self {
        MfaMethods::TOTP
    }
}

/// The policy's answer for one role on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// MFA state of the role.
    pub state: MfaState,
    /// The second factors that count.
    pub methods: MfaMethods,
    /// Grace for postponing enrollment; only ever set when `state` is `Enforced`.
    pub grace: Option<Grace>,
    /// Label of the phase in effect (its name, or "phase from DATE"); `None` before the
    /// first phase.
    pub phase: Option<String>,
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content is wrong.
    #[error("policy file {}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<PolicyError>,
    },
    /// Not TOML, a key the format does not know, or a value of the wrong type.
    #[error("invalid policy TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    /// Well-formed TOML with an invalid value; `key` names it (e.g. `phase[2].roles`).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

// === File format (stage 1) ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    timezone: String,
    roles: Vec<String>,
    recovery_codes: bool,
    #[serde(default, rename = "phase")]
    phases: Vec<PhaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    from: toml::value::Datetime,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    grace: Option<GraceFile>,
    roles: BTreeMap<String, String>,
    #[serde(default)]
    remember_browser_days: BTreeMap<String, u32>,
    #[serde(default)]
    methods: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraceFile {
    #[serde(default)]
    enroll_by: Option<toml::value::Datetime>,
    #[serde(default)]
    postpone_logins: Option<u32>,
}

// === Validated policy (stage 2) ===

#[derive(Debug, Clone, PartialEq)]
struct Phase {
    from: Date,
    /// Local midnight of `from` in the policy time zone.
    starts_at: Timestamp,
    name: Option<String>,
    grace: Option<Grace>,
    states: BTreeMap<String, MfaState>,
    /// Days a browser may skip the code step, per role (roles not listed: 0).
    remember_days: BTreeMap<String, u32>,
    /// The methods that count, per role (roles not listed: TOTP).
    methods: BTreeMap<String, MfaMethods>,
}

impl Phase {
    fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("phase from {}", self.from),
        }
    }
}

/// A validated, dated MFA policy (equal when it decides the same for every role and date).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    timezone: TimeZone,
    timezone_name: String,
    roles: Vec<String>,
    recovery_codes: bool,
    /// Sorted by strictly increasing `from`.
    phases: Vec<Phase>,
}

impl Policy {
    /// Parse and validate a policy from TOML text.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        Self::validate(file)
    }

    /// Read, parse and validate a policy file; errors name the file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| PolicyError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    fn validate(file: PolicyFile) -> Result<Policy, PolicyError> {
        let timezone = TimeZone::get(&file.timezone).map_err(|_| {
            invalid(
                "timezone",
                format!(
                    "unknown time zone {:?} (use an IANA name such as \"Europe/Amsterdam\" or \"UTC\")",
                    file.timezone
                ),
            )
        })?;

        let roles = validate_roles(file.roles)?;

        if file.phases.is_empty() {
            return Err(invalid(
                "phase",
                "define at least one [[phase]] (a phase may set every role to \"none\")",
            ));
        }

        let mut phases: Vec<Phase> = Vec::with_capacity(file.phases.len());
        for (index, phase) in file.phases.into_iter().enumerate() {
            let key = format!("phase[{}]", index + 1);
            let validated = validate_phase(&key, phase, &roles, &timezone)?;
            if let Some(previous) = phases.last()
                && validated.from <= previous.from
            {
                return Err(invalid(
                    format!("{key}.from"),
                    format!(
                        "dates must be strictly increasing ({} is not after {} of phase[{}])",
                        validated.from, previous.from, index
                    ),
                ));
            }
            phases.push(validated);
        }

        Ok(Policy {
            timezone,
            timezone_name: file.timezone,
            roles,
            recovery_codes: file.recovery_codes,
            phases,
        })
    }

    /// Role ids the policy knows, in file order.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// Whether `role` is listed in the policy.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// IANA name of the policy time zone.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// Unix seconds as people read them, in the policy's time zone: `2026-11-27 15:03 CET`.
    pub fn local_time(&self, unix: u64) -> String {
        crate::clock::timestamp_of(unix)
            .to_zoned_datetime(self.timezone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    /// Whether users get one-time recovery codes at enrollment.
    pub fn recovery_codes(&self) -> bool {
        self.recovery_codes
    }

    /// The local date of `now` in the policy time zone.
    pub fn today(&self, now: Timestamp) -> Date {
        now.to_zoned_datetime(self.timezone.clone()).date()
    }

    /// State for a role at an instant (converted to a local date in the policy's zone).
    /// Unknown role -> `None` (the caller applies its configured fallback).
    pub fn decide(&self, role: &str, now: Timestamp) -> Option<Decision> {
        self.decide_on(role, self.today(now))
    }

    /// State for a role on a local date. Unknown role -> `None`.
    pub fn decide_on(&self, role: &str, date: Date) -> Option<Decision> {
        if !self.has_role(role) {
            return None;
        }
        let Some(phase) = self.phase_on(date) else {
            return Some(Decision {
                state: MfaState::None,
                methods: MfaMethods::TOTP,
                grace: None,
                phase: None,
            });
        };
        // Validation guarantees every listed role has a state in every phase.
        let state = phase.states.get(role).copied()?;
        let grace = match state {
            MfaState::Enforced => phase.grace,
            MfaState::None | MfaState::Available => None,
        };
        Some(Decision {
            state,
            methods: phase.methods.get(role).copied().unwrap_or_default(),
            grace,
            phase: Some(phase.label()),
        })
    }

    /// How many days a browser may skip the code step for `role` at `now` (0: not at all),
    /// from the phase in effect (`remember_browser_days`). Unknown roles, roles without MFA
    /// and dates before the first phase get 0.
    pub fn remember_browser_days(&self, role: &str, now: Timestamp) -> u32 {
        self.remember_browser_days_on(role, self.today(now))
    }

    /// [`Policy::remember_browser_days`] on a local date.
    pub fn remember_browser_days_on(&self, role: &str, date: Date) -> u32 {
        let Some(phase) = self.phase_on(date) else {
            return 0;
        };
        if phase.states.get(role).is_none_or(|s| *s == MfaState::None) {
            return 0;
        }
        phase.remember_days.get(role).copied().unwrap_or(0)
    }

    /// Whether any phase counts passkeys for some role: the gateway must then be a WebAuthn
    /// relying party (`[webauthn]` in its configuration).
    pub fn uses_webauthn(&self) -> bool {
        self.phases
            .iter()
            .any(|p| p.methods.values().any(|m| m.webauthn))
    }

    /// Whether a user still in grace may postpone enrollment: given the decision's grace,
    /// the local date and how many times this user already postponed.
    pub fn may_postpone(grace: &Grace, today: Date, postponed_so_far: u32) -> bool {
        grace.may_postpone(today, postponed_so_far)
    }

    /// Instant at which a decision could next change after `now` (the next phase start),
    /// for caching. `None` when no later phase exists.
    pub fn next_change_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.phases
            .iter()
            .map(|p| p.starts_at)
            .find(|&start| start > now)
    }

    /// Label of the phase in effect at `now` (its name, or "phase from DATE"); `None` before
    /// the first phase.
    pub fn phase_label_at(&self, now: Timestamp) -> Option<String> {
        self.phase_on(self.today(now)).map(Phase::label)
    }

    /// The phase in effect on `date`: the last one starting on or before it.
    fn phase_on(&self, date: Date) -> Option<&Phase> {
        self.phases.iter().rev().find(|p| p.from <= date)
    }

    /// The table printed by `mfa-gateway policy show --at DATE`: the phase in effect, the
    /// next change, and one line per role with its state (and grace where it applies).
    pub fn render_matrix(&self, date: Date) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(out, "MFA policy on {date} ({})", self.timezone_name);
        match self.phase_on(date) {
            Some(phase) => {
                let _ = writeln!(
                    out,
                    "Phase:          {} (since {})",
                    phase.label(),
                    phase.from
                );
            }
            None => {
                let _ = writeln!(out, "Phase:          none yet; MFA is off for every role");
            }
        }
        match self.phases.iter().find(|p| p.from > date) {
            Some(next) => {
                let _ = writeln!(out, "Next change:    {} ({})", next.from, next.label());
            }
            None => {
                let _ = writeln!(out, "Next change:    none scheduled");
            }
        }
        let recovery = if self.recovery_codes {
            "issued at enrollment"
        } else {
            "not issued"
        };
        let _ = writeln!(out, "Recovery codes: {recovery}");
        let remembered: Vec<String> = self
            .roles
            .iter()
            .filter_map(|role| {
                let days = self.remember_browser_days_on(role, date);
                match days {
                    0 => None,
                    1 => Some(format!("{role} 1 day")),
                    n => Some(format!("{role} {n} days")),
                }
            })
            .collect();
        if remembered.is_empty() {
            let _ = writeln!(out, "Remember browser: off for every role");
        } else {
            let _ = writeln!(out, "Remember browser: {}", remembered.join(", "));
        }
        let _ = writeln!(out);

        let width = self
            .roles
            .iter()
            .map(String::len)
            .chain(std::iter::once("ROLE".len()))
            .max()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<width$}  {:<9}  {:<14}  GRACE",
            "ROLE", "STATE", "METHODS"
        );
        for role in &self.roles {
            let Some(decision) = self.decide_on(role, date) else {
                continue;
            };
            let grace = match (decision.state, decision.grace) {
                (MfaState::Enforced, Some(g)) => g.describe(date),
                (MfaState::Enforced, None) => "none: enrollment at next login".to_owned(),
                _ => "-".to_owned(),
            };
            let methods = match decision.state {
                MfaState::None => "-",
                _ => decision.methods.describe(),
            };
            let _ = writeln!(
                out,
                "{role:<width$}  {:<9}  {methods:<14}  {grace}",
                decision.state.as_str()
            );
        }
        out
    }
}

fn validate_roles(roles: Vec<String>) -> Result<Vec<String>, PolicyError> {
    if roles.is_empty() {
        return Err(invalid("roles", "list at least one role"));
    }
    for (index, role) in roles.iter().enumerate() {
        let well_formed = !role.is_empty()
            && role.len() <= MAX_ROLE_ID_LEN
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(invalid(
                "roles",
                format!(
                    "role id {role:?} is invalid: use 1 to {MAX_ROLE_ID_LEN} lowercase letters, digits, '-' or '_'"
                ),
            ));
        }
        if roles.iter().take(index).any(|r| r == role) {
            return Err(invalid("roles", format!("role {role:?} is listed twice")));
        }
    }
    Ok(roles)
}

fn validate_phase(
    key: &str,
    phase: PhaseFile,
    roles: &[String],
    timezone: &TimeZone,
) -> Result<Phase, PolicyError> {
    let from_key = format!("{key}.from");
    let from = to_date(&from_key, &phase.from)?;
    let starts_at = from
        .to_zoned_datetime(timezone.clone())
        .map_err(|e| invalid(&from_key, format!("{from} has no local midnight: {e}")))?
        .timestamp();

    let name = match phase.name {
        Some(name) if name.trim().is_empty() => {
            return Err(invalid(
                format!("{key}.name"),
                "must not be empty (or leave it out)",
            ));
        }
        Some(name) => Some(name.trim().to_owned()),
        None => None,
    };

    let mut states = BTreeMap::new();
    for (role, state) in &phase.roles {
        if !roles.contains(role) {
            return Err(invalid(
                format!("{key}.roles.{role}"),
                format!("unknown role {role:?} (add it to `roles` or remove it here)"),
            ));
        }
        let state: MfaState = state
            .parse()
            .map_err(|e: UnknownMfaState| invalid(format!("{key}.roles.{role}"), e.to_string()))?;
        states.insert(role.clone(), state);
    }
    if let Some(missing) = roles.iter().find(|r| !states.contains_key(*r)) {
        return Err(invalid(
            format!("{key}.roles"),
            format!("role {missing:?} missing (every phase must set every role)"),
        ));
    }

    let grace = match phase.grace {
        None => None,
        Some(grace) => {
            let grace_key = format!("{key}.grace");
            if !states.values().any(|s| *s == MfaState::Enforced) {
                return Err(invalid(
                    &grace_key,
                    "has no effect because no role is enforced in this phase; remove it",
                ));
            }
            let enroll_by = match &grace.enroll_by {
                Some(dt) => {
                    let date = to_date(&format!("{grace_key}.enroll_by"), dt)?;
                    if date < from {
                        return Err(invalid(
                            format!("{grace_key}.enroll_by"),
                            format!("{date} is before the phase starts ({from})"),
                        ));
                    }
                    Some(date)
                }
                None => None,
            };
            if grace.postpone_logins == Some(0) {
                return Err(invalid(
                    format!("{grace_key}.postpone_logins"),
                    "must be at least 1 (remove it to allow no postponed logins)",
                ));
            }
            if enroll_by.is_none() && grace.postpone_logins.is_none() {
                return Err(invalid(
                    &grace_key,
                    "set enroll_by, postpone_logins or both (or remove the table)",
                ));
            }
            Some(Grace {
                enroll_by,
                postpone_logins: grace.postpone_logins,
            })
        }
    };

    let mut remember_days = BTreeMap::new();
    for (role, days) in phase.remember_browser_days {
        let days_key = format!("{key}.remember_browser_days.{role}");
        let Some(state) = states.get(&role) else {
            return Err(invalid(
                days_key,
                format!("unknown role {role:?} (add it to `roles` or remove it here)"),
            ));
        };
        if days > MAX_REMEMBER_DAYS {
            return Err(invalid(
                days_key,
                format!("{days} days is more than the {MAX_REMEMBER_DAYS} allowed"),
            ));
        }
        if days > 0 && *state == MfaState::None {
            return Err(invalid(
                days_key,
                format!(
                    "has no effect because {role:?} is \"none\" in this phase (no code is asked); remove it"
                ),
            ));
        }
        remember_days.insert(role, days);
    }

    let mut methods = BTreeMap::new();
    for (role, names) in phase.methods {
        let methods_key = format!("{key}.methods.{role}");
        let Some(state) = states.get(&role) else {
            return Err(invalid(
                methods_key,
                format!("unknown role {role:?} (add it to `roles` or remove it here)"),
            ));
        };
        if *state == MfaState::None {
            return Err(invalid(
                methods_key,
                format!("has no effect because {role:?} is \"none\" in this phase; remove it"),
            ));
        }
        let mut m = MfaMethods {
            totp: false,
            webauthn: false,
        };
        for name in &names {
            let slot = match name.as_str() {
                "totp" => &mut m.totp,
                "webauthn" => &mut m.webauthn,
                other => {
                    return Err(invalid(
                        methods_key,
                        format!("unknown method {other:?} (use \"totp\" and/or \"webauthn\")"),
                    ));
                }
            };
            if *slot {
                return Err(invalid(methods_key, format!("{name:?} listed twice")));
            }
            *slot = true;
        }
        if names.is_empty() {
            return Err(invalid(
                methods_key,
                "list at least one method (\"totp\", \"webauthn\")",
            ));
        }
        methods.insert(role, m);
    }

    Ok(Phase {
        from,
        starts_at,
        name,
        grace,
        states,
        remember_days,
        methods,
    })
}

/// A TOML local date (no time, no offset) as a civil date.
fn to_date(key: &str, value: &toml::value::Datetime) -> Result<Date, PolicyError> {
    let expected = || {
        invalid(
            key,
            format!("expected a plain date like 2022-01-01 (no time, no offset), got {value}"),
        )
    };
    let (Some(date), None, None) = (value.date, value.time, value.offset) else {
        return Err(expected());
    };
    let year = i16::try_from(date.year).map_err(|_| expected())?;
    let month = i8::try_from(date.month).map_err(|_| expected())?;
    let day = i8::try_from(date.day).map_err(|_| expected())?;
    Date::new(year, month, day).map_err(|_| expected())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const SHIPPED: &str = include_str!("../config/policy.toml");
    const ALL_ROLES: [&str; 6] = [
        "administrator",
        "msp",
        "customer",
        "supplier",
        "contractor",
        "resource",
    ];

    fn shipped() -> Policy {
        Policy::from_toml(SHIPPED).unwrap()
    }

    fn state_on(policy: &Policy, role: &str, d: Date) -> MfaState {
        policy.decide_on(role, d).unwrap().state
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn err(text: &str) -> String {
        match Policy::from_toml(text) {
            Ok(_) => panic!("policy unexpectedly valid:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// A two-role policy with a customisable tail, for validation tests.
    fn small(tail: &str) -> String {
        format!(
            "timezone = \"Europe/Amsterdam\"\nroles = [\"msp\", \"supplier\"]\nrecovery_codes = true\n{tail}"
        )
    }

    #[test]
    fn shipped_policy_matches_the_announcement() {
        let p = shipped();
        assert_eq!(p.roles(), ALL_ROLES);
        assert!(p.recovery_codes());
        assert_eq!(p.timezone_name(), "Europe/Amsterdam");

        let expect = |d: Date, opted: MfaState| {
            for role in ["administrator", "msp", "customer"] {
                assert_eq!(state_on(&p, role, d), opted, "{role} on {d}");
            }
            for role in ["supplier", "contractor", "resource"] {
                assert_eq!(state_on(&p, role, d), MfaState::None, "{role} on {d}");
            }
        };
        expect(date(2021, 10, 31), MfaState::None);
        expect(date(2021, 11, 1), MfaState::Available);
        expect(date(2021, 12, 31), MfaState::Available);
        expect(date(2022, 1, 1), MfaState::Enforced);
        expect(date(2026, 11, 27), MfaState::Enforced);
    }

    #[test]
    fn shipped_policy_decision_details() {
        let p = shipped();
        assert_eq!(
            p.decide_on("msp", date(2021, 10, 31)),
            Some(Decision {
                state: MfaState::None,
                methods: MfaMethods::TOTP,
                grace: None,
                phase: None
            })
        );
        assert_eq!(
            p.decide_on("customer", date(2021, 11, 1)),
            Some(Decision {
                state: MfaState::Available,
                methods: MfaMethods::TOTP,
                grace: None,
                phase: Some("MFA available".to_owned())
            })
        );
        assert_eq!(
            p.decide_on("supplier", date(2022, 1, 1)),
            Some(Decision {
                state: MfaState::None,
                methods: MfaMethods::TOTP,
                grace: None,
                phase: Some("MFA enforced".to_owned())
            })
        );
        assert_eq!(
            p.decide_on("administrator", date(2022, 1, 1))
                .unwrap()
                .grace,
            None
        );
    }

    #[test]
    fn unknown_role_has_no_decision() {
        let p = shipped();
        assert!(!p.has_role("auditor"));
        assert!(p.has_role("contractor"));
        assert_eq!(p.decide_on("auditor", date(2022, 1, 1)), None);
        assert_eq!(p.decide_on("MSP", date(2022, 1, 1)), None);
        assert_eq!(p.decide("", ts("2022-06-01T12:00:00Z")), None);
    }

    #[test]
    fn phase_starts_at_local_midnight_in_the_policy_zone() {
        let p = shipped();
        // 23:30 UTC on 31 October is 00:30 on 1 November in Amsterdam (CET, UTC+1).
        let after = ts("2021-10-31T23:30:00Z");
        assert_eq!(p.today(after), date(2021, 11, 1));
        assert_eq!(p.decide("msp", after).unwrap().state, MfaState::Available);
        // 22:59:59 UTC is 23:59:59 local on 31 October: still before the first phase.
        let before = ts("2021-10-31T22:59:59Z");
        assert_eq!(p.today(before), date(2021, 10, 31));
        assert_eq!(p.decide("msp", before).unwrap().state, MfaState::None);
        // The exact instant of local midnight already belongs to the new phase.
        let midnight = ts("2021-10-31T23:00:00Z");
        assert_eq!(
            p.decide("msp", midnight).unwrap().state,
            MfaState::Available
        );
        // Enforcement starts at 2021-12-31T23:00Z.
        assert_eq!(
            p.decide("customer", ts("2021-12-31T22:59:59Z"))
                .unwrap()
                .state,
            MfaState::Available
        );
        assert_eq!(
            p.decide("customer", ts("2021-12-31T23:00:00Z"))
                .unwrap()
                .state,
            MfaState::Enforced
        );
    }

    #[test]
    fn next_change_after_gives_the_next_phase_start() {
        let p = shipped();
        let first = ts("2021-10-31T23:00:00Z");
        let second = ts("2021-12-31T23:00:00Z");
        assert_eq!(p.next_change_after(ts("2020-01-01T00:00:00Z")), Some(first));
        assert_eq!(p.next_change_after(ts("2021-10-31T22:59:59Z")), Some(first));
        // At the start instant itself the change has happened; the next one is later.
        assert_eq!(p.next_change_after(first), Some(second));
        assert_eq!(
            p.next_change_after(ts("2021-12-01T00:00:00Z")),
            Some(second)
        );
        assert_eq!(p.next_change_after(second), None);
        assert_eq!(p.next_change_after(ts("2026-11-27T10:00:00Z")), None);
    }

    #[test]
    fn summer_time_start_is_local_midnight_too() {
        let p = Policy::from_toml(&small(
            "[[phase]]\nfrom = 2022-07-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"none\"\n",
        ))
        .unwrap();
        // CEST is UTC+2.
        assert_eq!(
            p.next_change_after(ts("2022-06-01T00:00:00Z")),
            Some(ts("2022-06-30T22:00:00Z"))
        );
        assert_eq!(
            p.decide("msp", ts("2022-06-30T21:59:59Z")).unwrap().state,
            MfaState::None
        );
        assert_eq!(
            p.decide("msp", ts("2022-06-30T22:00:00Z")).unwrap().state,
            MfaState::Enforced
        );
    }

    #[test]
    fn state_text_round_trips() {
        for s in [MfaState::None, MfaState::Available, MfaState::Enforced] {
            assert_eq!(s.to_string().parse::<MfaState>().unwrap(), s);
        }
        assert_eq!("none".parse::<MfaState>().unwrap(), MfaState::None);
        assert_eq!(
            "Enforced".parse::<MfaState>().unwrap_err(),
            UnknownMfaState("Enforced".to_owned())
        );
    }

    const GRACE_POLICY: &str = r#"
timezone = "UTC"
roles = ["msp", "supplier"]
recovery_codes = false

[[phase]]
from = 2022-01-01
name = "enforced with grace"
[phase.grace]
enroll_by = 2022-01-31
postpone_logins = 3
[phase.roles]
msp = "enforced"
supplier = "available"

[[phase]]
from = 2022-03-01
[phase.grace]
postpone_logins = 1
[phase.roles]
msp = "enforced"
supplier = "enforced"
"#;

    #[test]
    fn grace_is_attached_only_to_enforced_roles() {
        let p = Policy::from_toml(GRACE_POLICY).unwrap();
        assert!(!p.recovery_codes());
        let msp = p.decide_on("msp", date(2022, 1, 10)).unwrap();
        assert_eq!(msp.state, MfaState::Enforced);
        assert_eq!(
            msp.grace,
            Some(Grace {
                enroll_by: Some(date(2022, 1, 31)),
                postpone_logins: Some(3)
            })
        );
        let supplier = p.decide_on("supplier", date(2022, 1, 10)).unwrap();
        assert_eq!(supplier.state, MfaState::Available);
        assert_eq!(supplier.grace, None);
        // An unnamed phase is labelled by its date.
        let later = p.decide_on("supplier", date(2022, 3, 1)).unwrap();
        assert_eq!(later.phase.as_deref(), Some("phase from 2022-03-01"));
        assert_eq!(
            later.grace,
            Some(Grace {
                enroll_by: None,
                postpone_logins: Some(1)
            })
        );
    }

    #[test]
    fn may_postpone_applies_every_limit() {
        let both = Grace {
            enroll_by: Some(date(2022, 1, 31)),
            postpone_logins: Some(3),
        };
        assert!(Policy::may_postpone(&both, date(2022, 1, 1), 0));
        assert!(Policy::may_postpone(&both, date(2022, 1, 31), 2)); // last day is inclusive
        assert!(!Policy::may_postpone(&both, date(2022, 2, 1), 0)); // date passed
        assert!(!Policy::may_postpone(&both, date(2022, 1, 5), 3)); // logins used up

        let by_date = Grace {
            enroll_by: Some(date(2022, 1, 31)),
            postpone_logins: None,
        };
        assert!(Policy::may_postpone(&by_date, date(2022, 1, 31), 1000));
        assert!(!Policy::may_postpone(&by_date, date(2022, 2, 1), 0));

        let by_count = Grace {
            enroll_by: None,
            postpone_logins: Some(1),
        };
        assert!(Policy::may_postpone(&by_count, date(2030, 1, 1), 0));
        assert!(!Policy::may_postpone(&by_count, date(2022, 1, 1), 1));

        let empty = Grace {
            enroll_by: None,
            postpone_logins: None,
        };
        assert!(!Policy::may_postpone(&empty, date(2022, 1, 1), 0));
    }

    #[test]
    fn render_matrix_shows_phase_states_and_grace() {
        let p = shipped();
        let before = p.render_matrix(date(2021, 10, 31));
        assert!(
            before.contains("MFA policy on 2021-10-31 (Europe/Amsterdam)"),
            "{before}"
        );
        assert!(before.contains("Phase:          none yet"), "{before}");
        assert!(
            before.contains("Next change:    2021-11-01 (MFA available)"),
            "{before}"
        );
        assert!(before.contains("administrator  none"), "{before}");

        let enforced = p.render_matrix(date(2022, 1, 1));
        assert!(
            enforced.contains("Phase:          MFA enforced (since 2022-01-01)"),
            "{enforced}"
        );
        assert!(
            enforced.contains("Next change:    none scheduled"),
            "{enforced}"
        );
        assert!(
            enforced.contains("Recovery codes: issued at enrollment"),
            "{enforced}"
        );
        assert!(
            enforced.contains(
                "msp            enforced   totp            none: enrollment at next login"
            ),
            "{enforced}"
        );
        assert!(
            enforced.contains("resource       none       -"),
            "{enforced}"
        );
        // One header line plus one line per role after the blank line.
        let table: Vec<&str> = enforced.split("\n\n").nth(1).unwrap().lines().collect();
        assert_eq!(table.len(), 7);

        let grace = Policy::from_toml(GRACE_POLICY)
            .unwrap()
            .render_matrix(date(2022, 1, 2));
        assert!(
            grace.contains(
                "msp       enforced   totp            may postpone enrollment until 2022-01-31 (inclusive) and for at most 3 logins"
            ),
            "{grace}"
        );
        assert!(grace.contains("Recovery codes: not issued"), "{grace}");
        let ended = Policy::from_toml(GRACE_POLICY)
            .unwrap()
            .render_matrix(date(2022, 2, 1));
        assert!(
            ended.contains("msp       enforced   totp            ended after 2022-01-31: enrollment at next login"),
            "{ended}"
        );
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("policy.toml");
        std::fs::write(&good, SHIPPED).unwrap();
        assert_eq!(Policy::load(&good).unwrap().roles().len(), 6);

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            SHIPPED.replace("Europe/Amsterdam", "Europe/Amstredam"),
        )
        .unwrap();
        let e = Policy::load(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
        assert!(
            e.contains("timezone: unknown time zone \"Europe/Amstredam\""),
            "{e}"
        );

        let missing = dir.path().join("absent.toml");
        let e = Policy::load(&missing).unwrap_err().to_string();
        assert!(e.starts_with("cannot read policy file"), "{e}");
        assert!(e.contains("absent.toml"), "{e}");
    }

    #[test]
    fn rejects_unknown_time_zone() {
        let e = err(&SHIPPED.replace("Europe/Amsterdam", "Europe/Amstredam"));
        assert!(
            e.starts_with("timezone: unknown time zone \"Europe/Amstredam\""),
            "{e}"
        );
    }

    #[test]
    fn rejects_missing_role_in_a_phase() {
        // Drop msp from the second phase only.
        let text = SHIPPED.replacen("msp = \"enforced\"\n", "", 1);
        assert_eq!(
            err(&text),
            "phase[2].roles: role \"msp\" missing (every phase must set every role)"
        );
    }

    #[test]
    fn rejects_dates_that_do_not_increase() {
        let text = SHIPPED.replace("from = 2022-01-01", "from = 2021-11-01");
        assert_eq!(
            err(&text),
            "phase[2].from: dates must be strictly increasing (2021-11-01 is not after 2021-11-01 of phase[1])"
        );
        let text = SHIPPED.replace("from = 2022-01-01", "from = 2021-10-01");
        assert!(err(&text).starts_with("phase[2].from: dates must be strictly increasing"));
    }

    #[test]
    fn rejects_unknown_role_and_unknown_state() {
        let e = err(&small(
            "[[phase]]\nfrom = 2022-01-01\n[phase.roles]\nmsp = \"none\"\nsupplier = \"none\"\nauditor = \"none\"\n",
        ));
        assert_eq!(
            e,
            "phase[1].roles.auditor: unknown role \"auditor\" (add it to `roles` or remove it here)"
        );
        let e = err(&small(
            "[[phase]]\nfrom = 2022-01-01\n[phase.roles]\nmsp = \"enforce\"\nsupplier = \"none\"\n",
        ));
        assert_eq!(
            e,
            "phase[1].roles.msp: unknown state \"enforce\": expected none, available or enforced"
        );
    }

    #[test]
    fn rejects_bad_role_lists() {
        let text = |roles: &str| {
            format!(
                "timezone = \"UTC\"\nroles = {roles}\nrecovery_codes = true\n[[phase]]\nfrom = 2022-01-01\n[phase.roles]\n"
            )
        };
        assert_eq!(err(&text("[]")), "roles: list at least one role");
        assert!(err(&text("[\"MSP\"]")).starts_with("roles: role id \"MSP\" is invalid"));
        assert!(err(&text("[\"\"]")).starts_with("roles: role id \"\" is invalid"));
        assert_eq!(
            err(&text("[\"msp\", \"msp\"]")),
            "roles: role \"msp\" is listed twice"
        );
    }

    #[test]
    fn rejects_unknown_keys_and_wrong_types() {
        let e = err(&SHIPPED.replace(
            "recovery_codes = true",
            "recovery_codes = true\nrecovery = 1",
        ));
        assert!(e.contains("unknown field `recovery`"), "{e}");
        let e = err(&SHIPPED.replace("name = \"MFA available\"", "nmae = \"MFA available\""));
        assert!(e.contains("unknown field `nmae`"), "{e}");
        let e = err(&SHIPPED.replace("recovery_codes = true\n", ""));
        assert!(e.contains("missing field `recovery_codes`"), "{e}");
        let e = err("this is not toml");
        assert!(e.starts_with("invalid policy TOML"), "{e}");
    }

    #[test]
    fn rejects_no_phases() {
        assert!(err(&small("")).starts_with("phase: define at least one [[phase]]"));
    }

    #[test]
    fn rejects_dates_with_time_or_offset() {
        let e = err(&SHIPPED.replace("from = 2021-11-01", "from = 2021-11-01T00:00:00"));
        assert!(
            e.starts_with("phase[1].from: expected a plain date like 2022-01-01"),
            "{e}"
        );
        let e = err(&SHIPPED.replace("from = 2021-11-01", "from = 2021-11-01T00:00:00Z"));
        assert!(e.starts_with("phase[1].from: expected a plain date"), "{e}");
        // A quoted date is a string, not a TOML date.
        let e = err(&SHIPPED.replace("from = 2021-11-01", "from = \"2021-11-01\""));
        assert!(e.starts_with("invalid policy TOML"), "{e}");
    }

    #[test]
    fn rejects_bad_grace() {
        let phase = |grace: &str, msp: &str| {
            small(&format!(
                "[[phase]]\nfrom = 2022-01-01\n{grace}[phase.roles]\nmsp = \"{msp}\"\nsupplier = \"none\"\n"
            ))
        };
        assert_eq!(
            err(&phase("[phase.grace]\npostpone_logins = 2\n", "available")),
            "phase[1].grace: has no effect because no role is enforced in this phase; remove it"
        );
        assert_eq!(
            err(&phase("[phase.grace]\n", "enforced")),
            "phase[1].grace: set enroll_by, postpone_logins or both (or remove the table)"
        );
        assert_eq!(
            err(&phase("[phase.grace]\npostpone_logins = 0\n", "enforced")),
            "phase[1].grace.postpone_logins: must be at least 1 (remove it to allow no postponed logins)"
        );
        assert_eq!(
            err(&phase(
                "[phase.grace]\nenroll_by = 2021-12-31\n",
                "enforced"
            )),
            "phase[1].grace.enroll_by: 2021-12-31 is before the phase starts (2022-01-01)"
        );
        let e = err(&phase("[phase.grace]\npostpone_logins = -1\n", "enforced"));
        assert!(e.starts_with("invalid policy TOML"), "{e}");
        let e = err(&phase("[phase.grace]\nuntil = 2022-02-01\n", "enforced"));
        assert!(e.contains("unknown field `until`"), "{e}");
        // enroll_by on the first day itself is allowed.
        assert!(
            Policy::from_toml(&phase(
                "[phase.grace]\nenroll_by = 2022-01-01\n",
                "enforced"
            ))
            .is_ok()
        );
    }

    #[test]
    fn remember_browser_days_are_per_phase_and_role() {
        // The shipped file remembers no browser.
        let p = shipped();
        for role in ALL_ROLES {
            assert_eq!(
                p.remember_browser_days_on(role, date(2022, 1, 1)),
                0,
                "{role}"
            );
        }
        assert!(
            p.render_matrix(date(2022, 1, 1))
                .contains("Remember browser: off for every role\n")
        );
        let p = Policy::from_toml(&small(
            "[[phase]]\nfrom = 2022-01-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"available\"\n\
             [phase.remember_browser_days]\nmsp = 0\nsupplier = 30\n\
             [[phase]]\nfrom = 2022-06-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"enforced\"\n\
             [phase.remember_browser_days]\nmsp = 1\nsupplier = 7\n\
             [[phase]]\nfrom = 2023-01-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"enforced\"\n",
        ))
        .unwrap();
        assert_eq!(
            p.remember_browser_days_on("supplier", date(2021, 12, 31)),
            0
        );
        assert_eq!(p.remember_browser_days_on("msp", date(2022, 1, 1)), 0);
        assert_eq!(p.remember_browser_days_on("supplier", date(2022, 1, 1)), 30);
        assert_eq!(p.remember_browser_days_on("supplier", date(2022, 6, 1)), 7);
        assert_eq!(p.remember_browser_days_on("msp", date(2022, 6, 1)), 1);
        // A later phase that does not list them ends it.
        assert_eq!(p.remember_browser_days_on("supplier", date(2023, 1, 1)), 0);
        assert_eq!(p.remember_browser_days_on("nobody", date(2022, 6, 1)), 0);
        // Local midnight in the policy's zone, like every phase.
        assert_eq!(
            p.remember_browser_days("supplier", ts("2022-05-31T21:59:59Z")),
            30
        );
        assert_eq!(
            p.remember_browser_days("supplier", ts("2022-05-31T22:00:00Z")),
            7
        );
        let m = p.render_matrix(date(2022, 6, 1));
        assert!(
            m.contains("Remember browser: msp 1 day, supplier 7 days\n"),
            "{m}"
        );
    }

    #[test]
    fn rejects_bad_remember_browser_days() {
        let phase = |days: &str, supplier: &str| {
            small(&format!(
                "[[phase]]\nfrom = 2022-01-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"{supplier}\"\n[phase.remember_browser_days]\n{days}"
            ))
        };
        assert_eq!(
            err(&phase("auditor = 3\n", "none")),
            "phase[1].remember_browser_days.auditor: unknown role \"auditor\" (add it to `roles` or remove it here)"
        );
        assert_eq!(
            err(&phase("msp = 366\n", "none")),
            "phase[1].remember_browser_days.msp: 366 days is more than the 365 allowed"
        );
        assert_eq!(
            err(&phase("supplier = 5\n", "none")),
            "phase[1].remember_browser_days.supplier: has no effect because \"supplier\" is \"none\" in this phase (no code is asked); remove it"
        );
        let e = err(&phase("msp = -1\n", "none"));
        assert!(e.starts_with("invalid policy TOML"), "{e}");
        let e = err(&phase("msp = \"30\"\n", "none"));
        assert!(e.starts_with("invalid policy TOML"), "{e}");
        // 0 is allowed for any role (the same as leaving it out), 365 is the most.
        assert!(Policy::from_toml(&phase("supplier = 0\nmsp = 365\n", "none")).is_ok());
    }

    #[test]
    fn rejects_empty_phase_name() {
        let e = err(&SHIPPED.replace("name = \"MFA available\"", "name = \"  \""));
        assert_eq!(e, "phase[1].name: must not be empty (or leave it out)");
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod method_tests {
    use super::*;
    use jiff::civil::date;

    fn small(tail: &str) -> String {
        format!(
            "timezone = \"Europe/Amsterdam\"\nroles = [\"msp\", \"supplier\"]\nrecovery_codes = true\n{tail}"
        )
    }

    #[test]
    fn methods_are_per_phase_and_role_and_default_to_codes() {
        let p = Policy::from_toml(&small(
            "[[phase]]\nfrom = 2022-01-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"available\"\n\
             [phase.methods]\nmsp = [\"totp\", \"webauthn\"]\n\
             [[phase]]\nfrom = 2022-03-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"available\"\n\
             [phase.methods]\nmsp = [\"webauthn\"]\n",
        ))
        .unwrap();
        let m = |role: &str, d: Date| p.decide_on(role, d).unwrap().methods;
        assert_eq!(m("msp", date(2021, 12, 31)), MfaMethods::TOTP);
        assert_eq!(
            m("msp", date(2022, 2, 28)),
            MfaMethods {
                totp: true,
                webauthn: true
            }
        );
        assert_eq!(
            m("msp", date(2022, 3, 1)),
            MfaMethods {
                totp: false,
                webauthn: true
            }
        );
        assert_eq!(m("supplier", date(2022, 3, 1)), MfaMethods::TOTP);
        assert!(p.uses_webauthn());
        let shipped = Policy::from_toml(include_str!("../config/policy.toml")).unwrap();
        assert!(!shipped.uses_webauthn());
        let matrix = p.render_matrix(date(2022, 3, 1));
        assert!(
            matrix.contains("ROLE      STATE      METHODS         GRACE\n"),
            "{matrix}"
        );
        assert!(
            matrix.contains("msp       enforced   webauthn        none"),
            "{matrix}"
        );
        assert!(
            matrix.contains("supplier  available  totp            -"),
            "{matrix}"
        );
        let before = p.render_matrix(date(2022, 2, 1));
        assert!(
            before.contains("msp       enforced   totp, webauthn  none"),
            "{before}"
        );
    }

    #[test]
    fn rejects_bad_methods() {
        let phase = |methods: &str| {
            small(&format!(
                "[[phase]]\nfrom = 2022-01-01\n[phase.roles]\nmsp = \"enforced\"\nsupplier = \"none\"\n[phase.methods]\n{methods}\n"
            ))
        };
        for (methods, want) in [
            ("msp = []", "phase[1].methods.msp: list at least one method"),
            (
                "msp = [\"sms\"]",
                "phase[1].methods.msp: unknown method \"sms\"",
            ),
            (
                "msp = [\"totp\", \"totp\"]",
                "phase[1].methods.msp: \"totp\" listed twice",
            ),
            (
                "boss = [\"totp\"]",
                "phase[1].methods.boss: unknown role \"boss\"",
            ),
            (
                "supplier = [\"webauthn\"]",
                "phase[1].methods.supplier: has no effect because \"supplier\" is \"none\"",
            ),
        ] {
            let e = match Policy::from_toml(&phase(methods)) {
                Ok(_) => panic!("valid: {methods}"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(want), "{methods}: {e}");
        }
    }
}
