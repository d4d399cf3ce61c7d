//! Connections of the Redis store: one shared connection per instance, of the kind the mode
//! needs (see the parent module for why Sentinel mode is handled here and not by the crate),
//! made lazily, dropped after errors that may mean the master moved, and re-made at most once
//! per [`RECONNECT_PAUSE`]; and the acknowledged writes (`WAIT 1` on a connection of their
//! own, see [`Connections::durable`]).
//!
//! Store operations see only [`Connections::run`], [`Connections::script`] and
//! [`Connections::durable`]; which server answers, and whether it is still the master, is
//! decided here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisFuture, ServerErrorKind, Value};
use tokio::sync::Mutex;

use crate::config::{Redis as RedisConfig, RedisMode, redact_url};
use crate::store::StoreError;

/// How often, in sentinel mode, the sentinels are asked whether the master has moved although
/// the connection to the old one still works.
pub const SENTINEL_RECHECK: Duration = Duration::from_secs(5);

/// After a failed connection attempt, operations fail at once for this long rather than
/// each trying again (a sentinel or server that does not answer would otherwise cost every
/// queued request a full connect timeout).
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// One live connection of whichever kind.
#[derive(Clone)]
enum Conn {
    /// Standalone: reconnects by itself to the one configured address.
    Managed(ConnectionManager),
    /// Sentinel: the master the sentinels named; dropped on errors, never reconnected.
    Direct(MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Direct(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(c) => c.req_packed_commands(p, offset, count),
            Conn::Direct(c) => c.req_packed_commands(p, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(c) => c.get_db(),
            Conn::Direct(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The master a sentinel-mode connection goes to.
#[derive(Clone)]
struct Master {
    client: redis::Client,
    addr: String,
    checked: Instant,
}

/// The connection in use; `generation` tells it from the ones made before and after, so an
/// error on an old connection does not drop a new one.
struct Live {
    conn: Conn,
    master: Option<Master>,
    generation: u64,
}

#[derive(Default)]
struct Slot {
    live: Option<Live>,
    generations: u64,
    /// The last failed connection attempt, so operations queued behind it fail at once
    /// instead of each waiting out its own attempt.
    failed: Option<(Instant, String)>,
}

/// What one operation uses: the connection, and which one it was.
struct Lease {
    conn: Conn,
    master: Option<redis::Client>,
    generation: u64,
}

/// How strictly an acknowledged write needs a replica (Sentinel mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ack {
    /// A replica must confirm, or the operation fails (enrollments, resets, revocation
    /// epochs): while every replica is down, they are refused rather than promised.
    Required,
    /// A connected replica must confirm, or the operation fails; a master with no replica
    /// connected at all goes on without (there is no replica a fail-over could promote
    /// without the write, unless one that was already behind comes back and is promoted).
    /// For the writes of every code check, logout and unlock, which would otherwise all stop
    /// while the last replica is gone. Operators who want them refused then set Redis's
    /// `min-replicas-to-write 1` (docs/operations.md).
    IfReplicaConnected,
}

/// How many replicas the master's `ROLE` answer lists as connected (`None` if it is not a
/// master's answer).
pub(super) fn connected_replicas(role: &Value) -> Option<usize> {
    let items = match role {
        Value::Array(items) => items,
        _ => return None,
    };
    let is_master = matches!(items.first(), Some(Value::BulkString(b)) if b.as_slice() == b"master")
        || matches!(items.first(), Some(Value::SimpleString(t)) if t == "master");
    match (is_master, items.get(2)) {
        (true, Some(Value::Array(replicas))) => Some(replicas.len()),
        _ => None,
    }
}

/// A write whose effect must survive a fail-over (see [`Connections::durable`]).
pub(super) enum Write<'a> {
    Script(redis::ScriptInvocation<'a>),
    Cmd(&'a Cmd),
}

pub(super) fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e)
}

/// Whether an error is the command's own (a script error, a wrong type, ...) and says nothing
/// about the server behind the connection. Every other error — I/O, timeouts, `READONLY`,
/// `LOADING`, `MASTERDOWN`, an unparsable answer — may mean the master has moved.
pub(super) fn is_command_error(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::ResponseError
                | ServerErrorKind::ExecAbort
                | ServerErrorKind::NoScript
                | ServerErrorKind::CrossSlot
                | ServerErrorKind::NotBusy
                | ServerErrorKind::NoSub
                | ServerErrorKind::NoPerm
        ) | ErrorKind::UnexpectedReturnType
            | ErrorKind::Extension
    )
}

/// The connection of one store (shared by its clones) and how to make it.
#[derive(Clone)]
pub(super) struct Connections {
    cfg: Arc<RedisConfig>,
    slot: Arc<Mutex<Slot>>,
}

impl Connections {
    pub(super) fn new(cfg: &RedisConfig) -> Self {
        Self {
            cfg: Arc::new(cfg.clone()),
            slot: Arc::new(Mutex::new(Slot::default())),
        }
    }

    fn connection_info(&self, url: &str) -> Result<redis::ConnectionInfo, StoreError> {
        use redis::IntoConnectionInfo;
        let info = url.into_connection_info().map_err(|e| {
            StoreError::Unavailable(format!("bad redis url {}: {e}", redact_url(url)))
        })?;
        Ok(match &self.cfg.password {
            Some(p) => {
                let settings = info.redis_settings().clone().set_password(p.as_str());
                info.set_redis_settings(settings)
            }
            None => info,
        })
    }

    /// The private CA for `rediss://`, when configured (read at each connect, so a renewed
    /// bundle is picked up by the next reconnect).
    fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>, StoreError> {
        let Some(path) = &self.cfg.ca else {
            return Ok(None);
        };
        let pem = std::fs::read(path)
            .map_err(|e| StoreError::Unavailable(format!("redis.ca {}: {e}", path.display())))?;
        Ok(Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }

    /// Connection settings of a sentinel-mode connection answering within `response`.
    fn direct_config(&self, response: Duration) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.cfg.connect_timeout))
            .set_response_timeout(Some(response))
    }

    /// Asks the sentinels for the current master (the crate also checks with `ROLE` that it
    /// is one), bounded by the connect timeout.
    ///
    /// With `rediss://` sentinels, the master is reached over TLS as well, and both are
    /// verified against `redis.ca` when it is set (else the system roots). The sentinels get
    /// `redis.sentinel_password` (or the password in their URL); the master gets
    /// `redis.password`.
    async fn resolve_master(&self) -> Result<redis::Client, StoreError> {
        use redis::IntoConnectionInfo;
        use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
        let master = self.cfg.sentinel_master.clone().unwrap_or_default();
        let mut addrs = Vec::with_capacity(self.cfg.nodes.len());
        let mut url_password = None;
        for url in &self.cfg.nodes {
            let info = url.as_str().into_connection_info().map_err(|e| {
                StoreError::Unavailable(format!("bad sentinel url {}: {e}", redact_url(url)))
            })?;
            if url_password.is_none() {
                url_password = info.redis_settings().password().map(str::to_owned);
            }
            addrs.push(info.addr().clone());
        }
        let tls = addrs
            .iter()
            .any(|a| matches!(a, redis::ConnectionAddr::TcpTls { .. }));
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
            .map_err(unavailable)?;
        if let Some(p) = &self.cfg.password {
            builder = builder.set_client_to_redis_password(p.as_str());
        }
        let sentinel_password = self
            .cfg
            .sentinel_password
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .or(url_password);
        if let Some(p) = sentinel_password {
            builder = builder.set_client_to_sentinel_password(p);
        }
        if tls {
            builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
            if let Some(certs) = self.tls_certificates()? {
                builder = builder
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_certificates(certs);
            }
        }
        let mut sentinel = builder.build().map_err(unavailable)?;
        let timeout = self.cfg.connect_timeout + Duration::from_secs(1);
        match tokio::time::timeout(timeout, sentinel.async_get_client()).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the sentinels named no master within {timeout:?}"
            ))),
        }
    }

    async fn connect(&self) -> Result<(Conn, Option<Master>), StoreError> {
        let timeout = self.cfg.connect_timeout;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(self.cfg.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let fut = async {
            match self.cfg.mode {
                RedisMode::Standalone => {
                    let url = self
                        .cfg
                        .nodes
                        .first()
                        .ok_or_else(|| StoreError::Unavailable("no redis url".into()))?;
                    let info = self.connection_info(url)?;
                    let client = match self.tls_certificates()? {
                        Some(certs) => redis::Client::build_with_tls(info, certs),
                        None => redis::Client::open(info),
                    }
                    .map_err(unavailable)?;
                    ConnectionManager::new_with_config(client, manager_config)
                        .await
                        .map(|c| (Conn::Managed(c), None))
                        .map_err(unavailable)
                }
                RedisMode::Sentinel => {
                    let client = self.resolve_master().await?;
                    let conn = client
                        .get_multiplexed_async_connection_with_config(
                            &self.direct_config(self.cfg.response_timeout),
                        )
                        .await
                        .map_err(unavailable)?;
                    let addr = client.get_connection_info().addr().to_string();
                    tracing::info!(master = %addr, "connected to the Redis master named by the sentinels");
                    let master = Master {
                        client,
                        addr,
                        checked: Instant::now(),
                    };
                    Ok((Conn::Direct(conn), Some(master)))
                }
                RedisMode::Cluster => {
                    let mut builder =
                        redis::cluster::ClusterClient::builder(self.cfg.nodes.clone())
                            .connection_timeout(timeout)
                            .response_timeout(self.cfg.response_timeout);
                    if let Some(p) = &self.cfg.password {
                        builder = builder.password(p.as_str());
                    }
                    if let Some(certs) = self.tls_certificates()? {
                        builder = builder.certs(certs);
                    }
                    let client = builder.build().map_err(unavailable)?;
                    client
                        .get_async_connection()
                        .await
                        .map(|c| (Conn::Cluster(c), None))
                        .map_err(unavailable)
                }
            }
        };
        // Sentinel mode takes two steps (the sentinels, then the master), each bounded.
        match tokio::time::timeout(timeout * 2 + Duration::from_secs(1), fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {timeout:?}"
            ))),
        }
    }

    /// The connection to use, made if there is none (at most one attempt per
    /// [`RECONNECT_PAUSE`]). In sentinel mode, starts a background check of the master every
    /// [`SENTINEL_RECHECK`].
    async fn lease(&self) -> Result<Lease, StoreError> {
        let mut slot = self.slot.lock().await;
        if slot.live.is_none() {
            if let Some((at, why)) = &slot.failed
                && at.elapsed() < RECONNECT_PAUSE
            {
                return Err(StoreError::Unavailable(why.clone()));
            }
            let (conn, master) = match self.connect().await {
                Ok(c) => c,
                Err(e) => {
                    slot.failed = Some((Instant::now(), e.to_string()));
                    return Err(e);
                }
            };
            slot.failed = None;
            slot.generations += 1;
            slot.live = Some(Live {
                conn,
                master,
                generation: slot.generations,
            });
        }
        let Some(live) = slot.live.as_mut() else {
            return Err(StoreError::Unavailable("no connection".into()));
        };
        if let Some(m) = live.master.as_mut()
            && m.checked.elapsed() >= SENTINEL_RECHECK
        {
            m.checked = Instant::now();
            self.spawn_recheck(live.generation, m.addr.clone());
        }
        Ok(Lease {
            conn: live.conn.clone(),
            master: live.master.as_ref().map(|m| m.client.clone()),
            generation: live.generation,
        })
    }

    /// Asks the sentinels, off the request path, whether the master is still `addr`; if not,
    /// drops the connection so the next operation goes to the new one.
    fn spawn_recheck(&self, generation: u64, addr: String) {
        let store = self.clone();
        tokio::spawn(async move {
            match store.resolve_master().await {
                Ok(client) => {
                    let now_at = client.get_connection_info().addr().to_string();
                    if now_at != addr {
                        tracing::warn!(old = %addr, new = %now_at, "the sentinels name a new Redis master: reconnecting");
                        store.forget(generation).await;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sentinels not reachable for the master check")
                }
            }
        });
    }

    /// Drops the connection of this generation (not a newer one).
    async fn forget(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot.live.as_ref().map(|l| l.generation) == Some(generation) {
            slot.live = None;
        }
    }

    /// After an error in sentinel mode the master may have moved: unless the error was the
    /// command's own, forget the connection so the next operation asks the sentinels again.
    async fn on_error(&self, generation: u64, e: &redis::RedisError) {
        if self.cfg.mode == RedisMode::Sentinel && !is_command_error(e) {
            tracing::debug!(error = %e, "dropping the Redis connection; asking the sentinels again");
            self.forget(generation).await;
        }
    }

    pub(super) async fn run<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        let mut lease = self.lease().await?;
        match cmd.query_async::<T>(&mut lease.conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.on_error(lease.generation, &e).await;
                Err(unavailable(e))
            }
        }
    }

    pub(super) async fn script<T: redis::FromRedisValue>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut lease = self.lease().await?;
        match inv.invoke_async::<T>(&mut lease.conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                self.on_error(lease.generation, &e).await;
                Err(unavailable(e))
            }
        }
    }

    /// Runs a write whose effect someone is told about (an enrollment, or removing one) and,
    /// in sentinel mode, returns only once a replica has it: `WAIT 1` on the connection that
    /// wrote. The write's result is a count; 0 means nothing was written and nothing is waited
    /// for.
    ///
    /// Trade-off: with asynchronous replication, a master that dies right after acknowledging
    /// would take the enrollment with it, and the user's next login would ask them to enroll
    /// again although their app shows a working entry (or a removed secret would come back).
    /// Waiting costs one replication round trip, and a connection of its own, per write: on
    /// code checks (each attempt is acknowledged before its code is checked), enrollments,
    /// resets, unlocks and logouts; never on proxied requests. A locked user's attempts are
    /// refused before any write. Writes whose loss only fails closed are not waited for: a
    /// right code clearing the user's count (lost: the count stays), the address's give-back
    /// and its (address, user) pair (lost: the address counts the user again). If no replica confirms within `redis.response_timeout`, the
    /// operation fails (503, "try again"): while every replica is down, new enrollments are
    /// refused rather than promised. The write itself may still be on the master; the retry
    /// then finds the user enrolled and asks for the next code. A dedicated connection is
    /// used, because `WAIT` blocks the connection it is sent on and the shared one carries
    /// every other request of this instance. Standalone and Cluster do not wait: a standalone
    /// server has no fail-over, and a cluster may have no replicas at all.
    pub(super) async fn durable(&self, write: Write<'_>) -> Result<i64, StoreError> {
        self.durable_as(write, |n: &i64| *n != 0, Ack::Required)
            .await
    }

    /// [`Self::durable`] for a write whose answer is of type `T`; `wrote` says from the answer
    /// whether anything was written (only then is a replica waited for), `ack` whether a
    /// master without any connected replica may go on without one (see [`Ack`]).
    pub(super) async fn durable_as<T: redis::FromRedisValue>(
        &self,
        write: Write<'_>,
        wrote: fn(&T) -> bool,
        ack: Ack,
    ) -> Result<T, StoreError> {
        let lease = self.lease().await?;
        let Some(client) = lease.master else {
            return match write {
                Write::Script(inv) => self.script(inv).await,
                Write::Cmd(cmd) => self.run(cmd).await,
            };
        };
        let wait = self.cfg.response_timeout;
        let result = async {
            let mut own = client
                .get_multiplexed_async_connection_with_config(
                    &self.direct_config(self.cfg.response_timeout + wait),
                )
                .await?;
            let n: T = match write {
                Write::Script(inv) => inv.invoke_async(&mut own).await?,
                Write::Cmd(cmd) => cmd.query_async(&mut own).await?,
            };
            if !wrote(&n) {
                return Ok((n, 1));
            }
            if ack == Ack::IfReplicaConnected {
                let role: Value = redis::cmd("ROLE").query_async(&mut own).await?;
                if connected_replicas(&role) == Some(0) {
                    tracing::debug!("no Redis replica connected: write not acknowledged");
                    return Ok((n, 1));
                }
            }
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            let acked: i64 = redis::cmd("WAIT")
                .arg(1)
                .arg(ms)
                .query_async(&mut own)
                .await?;
            Ok::<_, redis::RedisError>((n, acked))
        }
        .await;
        match result {
            Ok((n, acked)) if acked >= 1 => Ok(n),
            Ok(_) => {
                tracing::warn!(
                    "no Redis replica confirmed a write within {wait:?}: reported as failed"
                );
                Err(StoreError::Unavailable(format!(
                    "no replica confirmed the write within {wait:?}"
                )))
            }
            Err(e) => {
                self.on_error(lease.generation, &e).await;
                Err(unavailable(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(kind: ServerErrorKind) -> redis::RedisError {
        redis::RedisError::from((ErrorKind::Server(kind), "from the server"))
    }

    #[test]
    fn errors_that_may_mean_a_moved_master_drop_the_connection() {
        for kind in [
            ServerErrorKind::ReadOnly,
            ServerErrorKind::MasterDown,
            ServerErrorKind::BusyLoading,
            ServerErrorKind::TryAgain,
        ] {
            assert!(!is_command_error(&server(kind)), "{kind:?}");
        }
        for io in [
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::TimedOut,
        ] {
            let e = redis::RedisError::from(std::io::Error::from(io));
            assert!(!is_command_error(&e), "{io:?}");
        }
        assert!(!is_command_error(&redis::RedisError::from((
            ErrorKind::MasterNameNotFoundBySentinel,
            "no master"
        ))));
    }

    #[test]
    fn connected_replicas_are_read_from_role() {
        let master = |n: usize| {
            Value::Array(vec![
                Value::BulkString(b"master".to_vec()),
                Value::Int(3129659),
                Value::Array(
                    (0..n)
                        .map(|_| {
                            Value::Array(vec![
                                Value::BulkString(b"127.0.0.1".to_vec()),
                                Value::BulkString(b"9001".to_vec()),
                                Value::BulkString(b"3129242".to_vec()),
                            ])
                        })
                        .collect(),
                ),
            ])
        };
        assert_eq!(connected_replicas(&master(0)), Some(0));
        assert_eq!(connected_replicas(&master(2)), Some(2));
        let replica = Value::Array(vec![
            Value::BulkString(b"slave".to_vec()),
            Value::BulkString(b"127.0.0.1".to_vec()),
            Value::Int(9000),
        ]);
        assert_eq!(connected_replicas(&replica), None);
        assert_eq!(connected_replicas(&Value::Nil), None);
    }

    #[test]
    fn a_command_error_keeps_the_connection() {
        assert!(is_command_error(&server(ServerErrorKind::ResponseError)));
        assert!(is_command_error(&server(ServerErrorKind::NoScript)));
        assert!(is_command_error(&redis::RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not a number"
        ))));
    }
}
