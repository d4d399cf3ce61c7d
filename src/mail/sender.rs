//! The sender: delivers the outbox's jobs over SMTP, on one instance at a time.
//!
//! Every instance runs [`spawn`]; each second (or at once when this instance queued a job)
//! it tries to take or renew the sender's lease in Redis (`P{mail}:lease`, a few seconds
//! longer than one delivery may take). The holder claims one due job at a time (scored
//! "now + hold" in the same step, so a sender that dies gives it back when the hold ends),
//! looks up the user's address and language, renders the mail and hands it to the mail
//! server. Then:
//!
//! * accepted: the job is removed (`sent`);
//! * no address known for the user, or an e-mailed code that expired: removed (`skipped`);
//! * refused for good (an SMTP 5xx answer, such as an unknown recipient) or failed
//!   `mail.max_attempts` times: moved to the dead list with the last error (`dead`);
//! * any other failure (server down, timeout, 4xx): tried again after `mail.retry_after`,
//!   doubling with each failure up to an hour (`retry`).
//!
//! The lease keeps two instances from sending the same job at once; the hold keeps a job
//! safe when its sender dies between sending and removing it, at the price of a possible
//! second copy (at least once).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::text::{Frame, Rendered, render};
use super::{Job, Kind, Outbox, open_code};
use crate::auth::crypto::KeyRing;
use crate::clock::Clock;
use crate::config::{Mail as MailConfig, MailSecurity};
use crate::metrics::{MailResult, Metrics};
use crate::pages::Lang;

/// How long an e-mailed enrollment code stays valid (and how long its mail may wait).
pub const CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// How a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth trying again (server away, timeout, a 4xx answer).
    Transient(String),
    /// Will not work however often it is tried (a 5xx answer, a bad address).
    Permanent(String),
}

/// Hands a rendered mail to a mail server.
pub trait Deliver: Send + Sync {
    fn deliver<'a>(
        &'a self,
        to: &'a str,
        mail: &'a Rendered,
    ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;
}

/// SMTP through `lettre` (rustls).
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl Smtp {
    pub fn new(m: &MailConfig) -> Result<Self, String> {
        let tls = |m: &MailConfig| -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(m.host.clone());
            if let Some(ca) = &m.ca {
                let pem = std::fs::read(ca).map_err(|e| format!("mail.ca: {e}"))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("mail.ca: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("mail TLS: {e}"))
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&m.host)
            .port(m.port)
            .timeout(Some(m.timeout));
        b = match m.security {
            MailSecurity::StartTls => b.tls(Tls::Required(tls(m)?)),
            MailSecurity::Tls => b.tls(Tls::Wrapper(tls(m)?)),
            MailSecurity::PlainLoopback => b.tls(Tls::None),
        };
        if let (Some(u), Some(p)) = (&m.username, &m.password) {
            b = b.credentials(Credentials::new(u.clone(), p.to_string()));
        }
        Ok(Smtp {
            transport: b.build(),
            from: m.from.parse().map_err(|e| format!("mail.from: {e}"))?,
            reply_to: m.reply_to.as_deref().and_then(|r| r.parse().ok()),
        })
    }
}

impl Deliver for Smtp {
    fn deliver<'a>(
        &'a self,
        to: &'a str,
        mail: &'a Rendered,
    ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>> {
        Box::pin(async move {
            let to: Mailbox = to
                .parse()
                .map_err(|e| DeliveryError::Permanent(format!("address: {e}")))?;
            let mut b = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(mail.subject.clone());
            if let Some(r) = &self.reply_to {
                b = b.reply_to(r.clone());
            }
            let msg = b
                .multipart(MultiPart::alternative_plain_html(
                    mail.plain.clone(),
                    mail.html.clone(),
                ))
                .map_err(|e| DeliveryError::Permanent(format!("message: {e}")))?;
            match self.transport.send(msg).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(one_line(&e))),
                Err(e) => Err(DeliveryError::Transient(one_line(&e))),
            }
        })
    }
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        // Many errors repeat their source in their own text already.
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s.replace(['\r', '\n'], " ").chars().take(300).collect()
}

/// What the sender needs besides the outbox.
pub struct Sender {
    pub outbox: Outbox,
    pub deliver: Arc<dyn Deliver>,
    pub keys: Arc<KeyRing>,
    pub metrics: Arc<Metrics>,
    /// The gateway's clock: an e-mailed code's expiry.
    pub clock: Clock,
    /// The clock the outbox is scheduled by (due times, holds, back-off): the system's.
    pub sched: Clock,
    /// The policy's time zone, read at every mail (a policy reload may change it).
    pub tz: Arc<dyn Fn() -> TimeZone + Send + Sync>,
    pub help: Option<String>,
    pub product: String,
    /// `mail.language`, for users whose language is not known.
    pub language: Lang,
    pub max_attempts: u32,
    pub retry_after: Duration,
    /// The longest one delivery may take (`mail.timeout`).
    pub timeout: Duration,
    /// Dead jobs kept.
    pub dead_keep: usize,
}

/// What [`Sender::send_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing was due.
    Idle,
    Done(MailResult),
}

impl Sender {
    /// How long a claimed job is kept from other senders.
    fn hold(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }

    /// How long the lease lasts without renewal.
    pub fn lease_ttl(&self) -> Duration {
        self.hold() + Duration::from_secs(2)
    }

    /// The wait before attempt `n + 1` after `n` failures.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        self.retry_after
            .saturating_mul(factor)
            .min(Duration::from_secs(3600))
    }

    /// Claims and handles one due job.
    pub async fn send_one(&self) -> Result<Step, crate::store::StoreError> {
        let store = self.outbox.store();
        let now = self.clock.unix();
        let now_ms = self.sched.unix().saturating_mul(1000);
        let Some(raw) = store
            .outbox_claim(now_ms, self.hold(), 1)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Step::Idle);
        };
        let Ok(job) = serde_json::from_str::<Job>(&raw) else {
            tracing::error!("a mail job that cannot be read was moved to the dead list");
            store.outbox_bury(&raw, &raw, self.dead_keep).await?;
            self.metrics.mail(MailResult::Dead);
            return Ok(Step::Done(MailResult::Dead));
        };
        if job.expires.is_some_and(|e| e <= now) {
            store.outbox_done(&raw).await?;
            self.metrics.mail(MailResult::Skipped);
            tracing::info!(user = %job.user, kind = ?job.kind, "mail not sent: its code expired");
            return Ok(Step::Done(MailResult::Skipped));
        }
        let contact = store.contact(&job.user).await?;
        let Some(to) = contact.email else {
            store.outbox_done(&raw).await?;
            self.metrics.mail(MailResult::Skipped);
            tracing::info!(user = %job.user, kind = ?job.kind, "mail not sent: no e-mail address is known for the user (vms.role.email_*)");
            return Ok(Step::Done(MailResult::Skipped));
        };
        let lang = contact
            .lang
            .as_deref()
            .and_then(Lang::from_code)
            .unwrap_or(self.language);
        let code = match (&job.kind, &job.sealed_code) {
            (Kind::EmailCode, Some(s)) => open_code(&self.keys, &job.user, s),
            _ => None,
        };
        if job.kind == Kind::EmailCode && code.is_none() {
            store.outbox_done(&raw).await?;
            self.metrics.mail(MailResult::Skipped);
            tracing::warn!(user = %job.user, "an e-mailed code could not be opened (key ring changed?); not sent");
            return Ok(Step::Done(MailResult::Skipped));
        }
        let tz = (self.tz)();
        let frame = Frame {
            help: self.help.as_deref(),
            product: &self.product,
            tz: &tz,
        };
        let mail = render(&job, lang, &frame, code.as_deref(), CODE_TTL.as_secs() / 60);
        let outcome =
            match tokio::time::timeout(self.timeout * 2, self.deliver.deliver(&to, &mail)).await {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Transient("timed out".into())),
            };
        let failures = job.attempts.saturating_add(1);
        let error = match outcome {
            Ok(()) => {
                store.outbox_done(&raw).await?;
                self.metrics.mail(MailResult::Sent);
                tracing::info!(user = %job.user, kind = ?job.kind, "mail sent");
                return Ok(Step::Done(MailResult::Sent));
            }
            Err(DeliveryError::Permanent(e)) => (e, true),
            Err(DeliveryError::Transient(e)) => (e, failures >= self.max_attempts),
        };
        let (error, dead) = error;
        let next = Job {
            attempts: failures,
            error: Some(error.clone()),
            ..job.clone()
        };
        if dead {
            let buried = Job {
                sealed_code: None,
                ..next
            };
            let json = serde_json::to_string(&buried).unwrap_or_else(|_| raw.clone());
            store.outbox_bury(&raw, &json, self.dead_keep).await?;
            self.metrics.mail(MailResult::Dead);
            tracing::warn!(user = %job.user, kind = ?job.kind, attempts = failures, error = %error, "mail given up: moved to the dead list");
            return Ok(Step::Done(MailResult::Dead));
        }
        let json = serde_json::to_string(&next).unwrap_or_else(|_| raw.clone());
        let due = now_ms
            .saturating_add(u64::try_from(self.backoff(failures).as_millis()).unwrap_or(u64::MAX));
        store.outbox_retry(&raw, &json, due).await?;
        self.metrics.mail(MailResult::Retry);
        tracing::warn!(user = %job.user, kind = ?job.kind, attempts = failures, error = %error, "mail not delivered; tried again later");
        Ok(Step::Done(MailResult::Retry))
    }
}

/// How often the sender looks for work when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);

/// Runs the sender until `shutdown`: see the module documentation.
pub fn spawn(sender: Sender, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let token = crate::auth::crypto::random_token();
        let wake = sender.outbox.wake();
        let store = sender.outbox.store().clone();
        let mut polls: u64 = 0;
        loop {
            if polls.is_multiple_of(5)
                && let Ok((q, d)) = store.outbox_depth().await
            {
                sender.metrics.mail_outbox(q, d);
            }
            polls = polls.wrapping_add(1);
            let mut held = matches!(store.mail_lease(&token, sender.lease_ttl()).await, Ok(true));
            while held && !*shutdown.borrow() {
                match sender.send_one().await {
                    Ok(Step::Idle) => break,
                    Ok(Step::Done(_)) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the mail outbox could not be read");
                        break;
                    }
                }
                held = matches!(store.mail_lease(&token, sender.lease_ttl()).await, Ok(true));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = wake.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
        let _ = store.mail_lease_release(&token).await;
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::sync::Mutex;

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Contact, Store};

    /// A mail server that answers as told and keeps what it accepted.
    #[derive(Default)]
    struct Fake {
        answer: Mutex<Option<DeliveryError>>,
        got: Mutex<Vec<(String, Rendered)>>,
    }

    impl Deliver for Fake {
        fn deliver<'a>(
            &'a self,
            to: &'a str,
            mail: &'a Rendered,
        ) -> Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>> {
            Box::pin(async move {
                if let Some(e) = self.answer.lock().unwrap().clone() {
                    return Err(e);
                }
                self.got
                    .lock()
                    .unwrap()
                    .push((to.to_string(), mail.clone()));
                Ok(())
            })
        }
    }

    fn sender(store: &Store, fake: &Arc<Fake>, clock: &Clock) -> Sender {
        let keys = Arc::new(crate::auth::crypto::testing::ring("k1", &[("k1", 1)]));
        Sender {
            outbox: Outbox::new(store.clone(), Arc::new(Metrics::new())),
            deliver: Arc::clone(fake) as Arc<dyn Deliver>,
            keys,
            metrics: Arc::new(Metrics::new()),
            clock: clock.clone(),
            sched: clock.clone(),
            tz: Arc::new(|| TimeZone::UTC),
            help: Some("the desk".into()),
            product: "VMS sign-in".into(),
            language: Lang::En,
            max_attempts: 3,
            retry_after: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            dead_keep: 100,
        }
    }

    async fn with_address(store: &Store, user: &str, lang: Option<&str>) {
        let c = Contact {
            email: Some(format!("{user}@example.test")),
            lang: lang.map(str::to_string),
        };
        store.note_login(user, "staff", 1, &c).await.unwrap();
    }

    #[tokio::test]
    async fn a_job_is_removed_only_once_the_server_took_it() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        let s = sender(&store, &fake, &clock);
        with_address(&store, "alice", Some("nl")).await;
        s.outbox
            .push(
                &Job::new("alice", Kind::MfaDisabled, 1_000_000),
                1_000_000_000,
            )
            .await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Sent));
        let got = fake.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "alice@example.test");
        assert!(
            got[0].1.subject.starts_with("MFA is uitgezet"),
            "{:?}",
            got[0].1
        );
        assert_eq!(store.outbox_depth().await.unwrap(), (0, 0));
        assert_eq!(s.send_one().await.unwrap(), Step::Idle);
    }

    #[tokio::test]
    async fn failures_back_off_and_end_in_the_dead_list() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        *fake.answer.lock().unwrap() = Some(DeliveryError::Transient("connection refused".into()));
        let s = sender(&store, &fake, &clock);
        with_address(&store, "bob", None).await;
        s.outbox
            .push(&Job::new("bob", Kind::Enrolled, 1_000_000), 1_000_000_000)
            .await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Retry));
        // Not due again before the back-off (10 s), then 20 s after the second failure.
        clock.advance(9);
        assert_eq!(s.send_one().await.unwrap(), Step::Idle);
        clock.advance(1);
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Retry));
        clock.advance(19);
        assert_eq!(s.send_one().await.unwrap(), Step::Idle);
        clock.advance(1);
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Dead));
        assert_eq!(store.outbox_depth().await.unwrap(), (0, 1));
        let dead: Job = serde_json::from_str(&store.outbox_dead(10).await.unwrap()[0]).unwrap();
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.error.as_deref(), Some("connection refused"));
        assert!(fake.got.lock().unwrap().is_empty());
        assert_eq!(s.backoff(1), Duration::from_secs(10));
        assert_eq!(s.backoff(30), Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn the_server_back_delivers_what_waited() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        *fake.answer.lock().unwrap() = Some(DeliveryError::Transient("down".into()));
        let s = sender(&store, &fake, &clock);
        with_address(&store, "bob", None).await;
        s.outbox
            .push(&Job::new("bob", Kind::Enrolled, 1_000_000), 1_000_000_000)
            .await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Retry));
        *fake.answer.lock().unwrap() = None;
        clock.advance(10);
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Sent));
        assert_eq!(fake.got.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_refusal_for_good_goes_to_the_dead_list_at_once() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        *fake.answer.lock().unwrap() = Some(DeliveryError::Permanent("550 no such user".into()));
        let s = sender(&store, &fake, &clock);
        with_address(&store, "bob", None).await;
        s.outbox
            .push(&Job::new("bob", Kind::Enrolled, 1_000_000), 1_000_000_000)
            .await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Dead));
    }

    #[tokio::test]
    async fn a_claimed_job_whose_sender_died_comes_back_after_the_hold() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        let s = sender(&store, &fake, &clock);
        with_address(&store, "bob", None).await;
        s.outbox
            .push(&Job::new("bob", Kind::Enrolled, 1_000_000), 1_000_000_000)
            .await;
        // A sender claims it and dies.
        let claimed = store
            .outbox_claim(1_000_000_000, s.hold(), 1)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(s.send_one().await.unwrap(), Step::Idle);
        clock.advance(i64::try_from(s.hold().as_secs()).unwrap());
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Sent));
    }

    #[tokio::test]
    async fn without_an_address_or_after_its_expiry_nothing_is_sent() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        let s = sender(&store, &fake, &clock);
        s.outbox
            .push(
                &Job::new("nobody", Kind::Enrolled, 1_000_000),
                1_000_000_000,
            )
            .await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Skipped));
        with_address(&store, "carol", None).await;
        let mut job = Job::new("carol", Kind::EmailCode, 1_000_000);
        job.sealed_code = super::super::seal_code(&s.keys, "carol", "12345678");
        job.expires = Some(1_000_000 + 900);
        s.outbox.push(&job, 1_000_000_000).await;
        clock.advance(900);
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Skipped));
        assert!(fake.got.lock().unwrap().is_empty());
        assert_eq!(store.outbox_depth().await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn the_code_mail_carries_the_code_and_the_dead_list_never_does() {
        let store = Store::Memory(MemoryStore::new());
        let clock = Clock::manual(1_000_000);
        let fake = Arc::new(Fake::default());
        let s = sender(&store, &fake, &clock);
        with_address(&store, "carol", None).await;
        let mut job = Job::new("carol", Kind::EmailCode, 1_000_000);
        job.sealed_code = super::super::seal_code(&s.keys, "carol", "24681357");
        let stored = serde_json::to_string(&job).unwrap();
        assert!(
            !stored.contains("24681357"),
            "the outbox holds the code sealed"
        );
        s.outbox.push(&job, 1_000_000_000).await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Sent));
        assert!(fake.got.lock().unwrap()[0].1.plain.contains("24681357"));
        *fake.answer.lock().unwrap() = Some(DeliveryError::Permanent("550".into()));
        s.outbox.push(&job, 1_000_000_000).await;
        assert_eq!(s.send_one().await.unwrap(), Step::Done(MailResult::Dead));
        let dead: Job = serde_json::from_str(&store.outbox_dead(1).await.unwrap()[0]).unwrap();
        assert_eq!(dead.sealed_code, None);
    }

    #[tokio::test]
    async fn one_sender_holds_the_lease_at_a_time() {
        let store = Store::Memory(MemoryStore::new());
        assert!(store.mail_lease("a", Duration::from_secs(5)).await.unwrap());
        assert!(!store.mail_lease("b", Duration::from_secs(5)).await.unwrap());
        assert!(store.mail_lease("a", Duration::from_secs(5)).await.unwrap());
        store.mail_lease_release("a").await.unwrap();
        assert!(store.mail_lease("b", Duration::from_secs(5)).await.unwrap());
    }
}
