//! The files under `deploy/` and the operations guide, checked as far as this machine allows.
//!
//! Why: deployment files rot silently. A renamed config key, a probe on a path that moved or
//! a unit with a typo is only noticed on the day someone deploys. Docker, a cluster and
//! systemd as PID 1 are not available where the tests run, so this checks what can be
//! checked without them:
//!
//! * every YAML file parses (multi-document files included) and the Kubernetes objects fit
//!   together (replicas, probe paths, ports, secret names, labels, the shipped policy);
//! * the systemd unit passes `systemd-analyze verify` where that command exists;
//! * each shipped `gateway.toml` is run the way its deployment runs it: the same command
//!   line, secrets from the environment as its example file names them, paths and addresses
//!   moved into a temporary directory and onto loopback, against a password-protected
//!   redis-server and the demo VMS, until `/.mfa/ready` says everything is up;
//! * every metric the alert rules, the Grafana dashboard and the operations guide name exists;
//! * the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`).

mod common;
mod container;
mod kubernetes;
mod metrics;
mod promtool;
mod systemd;
mod yaml;
