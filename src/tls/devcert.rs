//! Development certificates: a throw-away local CA and a server certificate it signed.
//!
//! Why: the gateway only speaks HTTPS (session cookies are `Secure`), so developers and test
//! suites need a certificate that a client can verify properly, not a self-signed leaf that
//! everything has to be told to ignore. A client that trusts `ca.pem` verifies the server
//! certificate exactly as it would in production.
//!
//! How:
//!
//! ```text
//!   generate(extra, now)                         write_to(dir, extra, now)
//!   ┌──────────────────────────────┐             dir/ca.pem      CA certificate
//!   │ CA key (P-256)  ── signs ──► │  ─────────► dir/server.pem  leaf, then CA
//!   │ leaf key (P-256)             │             dir/server.key  leaf key, mode 0600
//!   │ CA key dropped, never stored │
//!   └──────────────────────────────┘   ensure(dir, extra, now): reuse the files if they
//!                                      still verify for every name 7 days from now,
//!                                      otherwise write_to.
//! ```
//!
//! The CA key exists only in memory during [`generate`]; once the leaf is signed nobody can
//! issue another certificate under that CA, so trusting `ca.pem` on a developer machine trusts
//! exactly one certificate. Both certificates are valid for about [`VALIDITY_DAYS`] days,
//! starting the day before `now` to tolerate clock skew, and carry random serial numbers so
//! browsers never see two different certificates with the same issuer and serial.
//! The names always include `localhost`, `127.0.0.1` and `::1`.
//!
//! Never trust a development CA outside a developer machine; production certificates come
//! from the organisation's PKI (see `certs/README.md`).

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber, date_time_ymd,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};
use zeroize::Zeroizing;

use super::config::aead_provider;
use super::error::TlsError;
use super::load::{CertPaths, load_certificates, load_certified_key};

/// Names every development certificate covers.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Approximate lifetime of a development certificate.
pub const VALIDITY_DAYS: i64 = 90;
/// [`ensure`] replaces certificates that expire within this many days.
pub const RENEW_BEFORE_DAYS: i64 = 7;
/// File name of the development CA certificate.
pub const CA_FILE: &str = "ca.pem";
/// File name of the server chain (leaf, then CA).
pub const CERT_FILE: &str = "server.pem";
/// File name of the server private key.
pub const KEY_FILE: &str = "server.key";

/// A development CA and server certificate, PEM-encoded.
pub struct DevCert {
    /// The CA certificate to trust on the developer machine.
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate.
    pub cert_chain_pem: String,
    /// The server private key (PKCS#8), wiped from memory on drop.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for DevCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCert")
            .field("ca_pem", &self.ca_pem)
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// Where [`write_to`] and [`ensure`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertFiles {
    /// The CA certificate to trust.
    pub ca: PathBuf,
    /// The server chain and key, ready for the TLS listener.
    pub server: CertPaths,
}

impl DevCertFiles {
    /// The file locations inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca: dir.join(CA_FILE),
            server: CertPaths {
                cert: dir.join(CERT_FILE),
                key: dir.join(KEY_FILE),
            },
        }
    }
}

/// The names a certificate for `extra_names` covers: [`DEFAULT_NAMES`] then the extras,
/// normalised (lower-case DNS names, canonical IP text) and without duplicates.
pub fn names(extra_names: &[&str]) -> Result<Vec<String>, TlsError> {
    let mut out: Vec<String> = Vec::new();
    for raw in DEFAULT_NAMES.iter().chain(extra_names) {
        let name = normalise_name(raw)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn normalise_name(raw: &str) -> Result<String, TlsError> {
    let trimmed = raw.trim();
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let lower = trimmed.to_ascii_lowercase();
    match ServerName::try_from(lower.as_str()) {
        Ok(ServerName::DnsName(_)) => Ok(lower),
        _ => Err(TlsError::DevCert(format!(
            "{raw:?} is not a valid DNS name or IP address"
        ))),
    }
}

/// Creates a new development CA and a server certificate for [`DEFAULT_NAMES`] plus
/// `extra_names`, valid from the day before `now` for [`VALIDITY_DAYS`] days.
pub fn generate(extra_names: &[&str], now: Timestamp) -> Result<DevCert, TlsError> {
    let names = names(extra_names)?;
    let (start, end) = (utc_day(now, -1)?, utc_day(now, VALIDITY_DAYS)?);
    let rcgen_err = |what: &str, err: rcgen::Error| TlsError::DevCert(format!("{what}: {err}"));

    let ca_serial = random_serial()?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = distinguished_name(&format!(
        "mfa-gateway development CA {} {}",
        start.0,
        hex_prefix(&ca_serial)
    ));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = date_time_ymd(start.0, start.1, start.2);
    ca_params.not_after = date_time_ymd(end.0, end.1, end.2);
    ca_params.serial_number = Some(SerialNumber::from(ca_serial));
    let ca_key = KeyPair::generate().map_err(|e| rcgen_err("CA key generation failed", e))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .map_err(|e| rcgen_err("CA certificate creation failed", e))?;

    let mut leaf_params = CertificateParams::new(names.clone())
        .map_err(|e| rcgen_err("invalid certificate name", e))?;
    leaf_params.distinguished_name =
        distinguished_name(names.first().map_or("localhost", String::as_str));
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = date_time_ymd(start.0, start.1, start.2);
    leaf_params.not_after = date_time_ymd(end.0, end.1, end.2);
    leaf_params.serial_number = Some(SerialNumber::from(random_serial()?));
    let leaf_key = KeyPair::generate().map_err(|e| rcgen_err("key generation failed", e))?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .map_err(|e| rcgen_err("signing the server certificate failed", e))?;

    let ca_pem = ca.pem();
    Ok(DevCert {
        cert_chain_pem: format!("{}{}", leaf.pem(), ca_pem),
        ca_pem,
        key_pem: Zeroizing::new(leaf_key.serialize_pem()),
    })
}

/// Generates a development certificate and writes `ca.pem`, `server.pem` and `server.key`
/// (mode 0600) into `dir`, creating it (mode 0700) if needed. Each file is written to a
/// temporary name and renamed, so a running watcher never reads half a file.
pub fn write_to(
    dir: &Path,
    extra_names: &[&str],
    now: Timestamp,
) -> Result<DevCertFiles, TlsError> {
    let dev = generate(extra_names, now)?;
    create_private_dir(dir)?;
    let files = DevCertFiles::in_dir(dir);
    write_atomically(&files.ca, dev.ca_pem.as_bytes(), 0o644)?;
    write_atomically(&files.server.key, dev.key_pem.as_bytes(), 0o600)?;
    write_atomically(&files.server.cert, dev.cert_chain_pem.as_bytes(), 0o644)?;
    Ok(files)
}

/// Returns the development certificate in `dir`, creating a new one unless the existing files
/// form a valid pair that verifies against `ca.pem` for every requested name both at `now`
/// and [`RENEW_BEFORE_DAYS`] days later.
pub fn ensure(dir: &Path, extra_names: &[&str], now: Timestamp) -> Result<DevCertFiles, TlsError> {
    let files = DevCertFiles::in_dir(dir);
    let wanted = names(extra_names)?;
    match check_reusable(&files, &wanted, now) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "reusing development certificate");
            return Ok(files);
        }
        Err(reason) if files.server.cert.exists() => {
            tracing::info!(reason = %reason, "replacing development certificate");
        }
        Err(_) => {}
    }
    let files = write_to(dir, extra_names, now)?;
    tracing::warn!(
        ca = %files.ca.display(),
        names = %wanted.join(", "),
        "created a development certificate; trust its CA on this machine only, never in production"
    );
    Ok(files)
}

/// Checks that the files in `files` can serve `names` now and for the renewal margin.
fn check_reusable(files: &DevCertFiles, names: &[String], now: Timestamp) -> Result<(), TlsError> {
    let provider = Arc::new(aead_provider());
    let key = load_certified_key(&files.server, &provider)?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(load_certificates("dev CA", &files.ca)?);
    if added == 0 {
        return Err(TlsError::DevCert(format!(
            "{} holds no usable CA certificate",
            files.ca.display()
        )));
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::DevCert(format!("cannot build verifier: {e}")))?;
    let (leaf, intermediates) = key
        .cert
        .split_first()
        .ok_or_else(|| TlsError::DevCert("empty certificate chain".to_string()))?;
    let later = now
        .checked_add(SignedDuration::from_hours(RENEW_BEFORE_DAYS * 24))
        .map_err(|e| TlsError::DevCert(format!("date out of range: {e}")))?;
    for name in names {
        let server_name = ServerName::try_from(name.as_str())
            .map_err(|e| TlsError::DevCert(format!("{name:?}: {e}")))?;
        for at in [now, later] {
            let seconds = u64::try_from(at.as_second()).unwrap_or(0);
            verifier
                .verify_server_cert(
                    leaf,
                    intermediates,
                    &server_name,
                    &[],
                    UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds)),
                )
                .map_err(|e| {
                    TlsError::DevCert(format!(
                        "existing certificate not usable for {name} at {at}: {e}"
                    ))
                })?;
        }
    }
    Ok(())
}

/// The UTC calendar day `offset_days` from `now`, as (year, month, day).
fn utc_day(now: Timestamp, offset_days: i64) -> Result<(i32, u8, u8), TlsError> {
    let day = now
        .checked_add(SignedDuration::from_hours(offset_days * 24))
        .map_err(|e| TlsError::DevCert(format!("date out of range: {e}")))?
        .to_zoned_datetime(TimeZone::UTC)
        .date();
    let month = u8::try_from(day.month()).map_err(|e| TlsError::DevCert(e.to_string()))?;
    let dom = u8::try_from(day.day()).map_err(|e| TlsError::DevCert(e.to_string()))?;
    Ok((i32::from(day.year()), month, dom))
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        "mfa-gateway development (do not trust in production)",
    );
    dn.push(DnType::CommonName, common_name);
    dn
}

/// 16 random bytes with the top bit cleared, so the DER INTEGER stays positive.
fn random_serial() -> Result<Vec<u8>, TlsError> {
    let mut serial = vec![0u8; 16];
    aws_lc_rs::rand::fill(&mut serial)
        .map_err(|_| TlsError::DevCert("the system random generator failed".to_string()))?;
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
    }
    Ok(serial)
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `contents` to `path` through `<path>.tmp` and a rename, with Unix `mode`.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Write { path, source }
    };
    // A leftover temporary file may have other permissions; start from scratch.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&tmp)(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tls::test_support::{leaf_der, now};
    use crate::tls::validity::validity;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    fn chain_of(dev: &DevCert) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(dev.cert_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn names_always_include_the_loopback_names() {
        assert_eq!(names(&[]).unwrap(), vec!["localhost", "127.0.0.1", "::1"]);
        assert_eq!(
            names(&[
                "VMS.Example.test",
                "localhost",
                "0:0:0:0:0:0:0:1",
                "10.0.0.5"
            ])
            .unwrap(),
            vec![
                "localhost",
                "127.0.0.1",
                "::1",
                "vms.example.test",
                "10.0.0.5"
            ]
        );
        let err = names(&["not a name"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "development certificate: \"not a name\" is not a valid DNS name or IP address"
        );
    }

    #[test]
    fn new_chain_is_leaf_then_ca_and_valid_about_ninety_days() {
        let now: Timestamp = "2026-11-27T22:13:00Z".parse().unwrap();
        let dev = generate(&["gateway.test"], now).unwrap();
        let chain = chain_of(&dev);
        assert_eq!(chain.len(), 2);
        let ca = CertificateDer::from_pem_slice(dev.ca_pem.as_bytes()).unwrap();
        assert_eq!(chain.get(1), Some(&ca));
        let v = validity(chain.first().unwrap()).unwrap();
        assert_eq!(v.not_before, "2026-11-26T00:00:00Z".parse().unwrap());
        assert_eq!(v.not_after, "2027-02-25T00:00:00Z".parse().unwrap());
        assert!(dev.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{dev:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn every_generation_has_a_new_ca_and_serials() {
        let a = generate(&[], now()).unwrap();
        let b = generate(&[], now()).unwrap();
        assert_ne!(a.ca_pem, b.ca_pem);
        assert_ne!(leaf_der(&a), leaf_der(&b));
    }

    #[cfg(unix)]
    #[test]
    fn write_to_creates_the_three_files_with_a_private_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dev");
        let files = write_to(&target, &[], now()).unwrap();
        assert_eq!(files, DevCertFiles::in_dir(&target));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.server.key), 0o600);
        assert_eq!(mode(&target), 0o700);
        assert!(
            std::fs::read_to_string(&files.ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        let chain = load_certificates("tls.cert", &files.server.cert).unwrap();
        assert_eq!(chain.len(), 2);
        assert!(load_certified_key(&files.server, &aead_provider()).is_ok());
        let leftovers: Vec<_> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn ensure_reuses_valid_files_and_replaces_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let files = ensure(dir.path(), &[], now).unwrap();
        let first = std::fs::read(&files.server.cert).unwrap();

        // Still valid for weeks: reused as is.
        ensure(dir.path(), &[], now).unwrap();
        assert_eq!(std::fs::read(&files.server.cert).unwrap(), first);

        // A new name is not covered: replaced.
        ensure(dir.path(), &["gateway.test"], now).unwrap();
        let second = std::fs::read(&files.server.cert).unwrap();
        assert_ne!(second, first);

        // Within the renewal margin (85 days later): replaced.
        let later = now
            .checked_add(SignedDuration::from_hours(85 * 24))
            .unwrap();
        ensure(dir.path(), &["gateway.test"], later).unwrap();
        assert_ne!(std::fs::read(&files.server.cert).unwrap(), second);
    }

    /// The openssl script must produce files this module accepts as a valid development
    /// certificate. Skipped (with a note) where the `openssl` CLI is not installed.
    #[test]
    fn openssl_script_output_is_a_reusable_dev_cert() {
        let has_openssl = std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_openssl {
            eprintln!("skipped: openssl CLI not found");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-dev-certs.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg("gateway.test")
            .env("DEV_CERT_DIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files = DevCertFiles::in_dir(dir.path());
        let wanted = names(&["gateway.test"]).unwrap();
        check_reusable(&files, &wanted, now()).unwrap();
        let other = names(&["other.test"]).unwrap();
        assert!(check_reusable(&files, &other, now()).is_err());
    }

    #[test]
    fn ensure_replaces_broken_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure(dir.path(), &[], now()).unwrap();
        std::fs::write(&files.server.key, "garbage").unwrap();
        let files = ensure(dir.path(), &[], now()).unwrap();
        assert!(load_certified_key(&files.server, &aead_provider()).is_ok());
    }
}
