//! Scale-out, tested for real: one Redis is a single point of failure and one gateway is too,
//! so these tests run the gateway through a Redis fail-over under Sentinel (the master killed
//! mid-run), run every flow on a Redis Cluster, and share one Redis between two instances.
//! Every Redis is a real `redis-server` on a loopback port, killed when the test ends.

use std::collections::HashMap;
use std::time::Duration;

use mfa_gateway::auth::totp;
use mfa_gateway::clock::Clock;
use mfa_gateway::demo::vms::DemoVms;
use mfa_gateway::metrics::MfaEvent;
use mfa_gateway::store::redis::SENTINEL_RECHECK;

use crate::support::browser::*;
use crate::support::*;

/// A date on which the shipped policy enforces MFA for administrators, MSPs and customers.
const ENFORCED: &str = "2022-02-01T09:00:00Z";

/// Gateway instances in front of one demo VMS, sharing one configuration (so one key ring),
/// one clock and one Redis.
struct Fleet {
    gws: Vec<Gw>,
    vms: DemoVms,
    _dirs: Vec<tempfile::TempDir>,
    _certs: Certs,
}

async fn fleet(redis: &str, mfa_extra: &str, instances: usize) -> Fleet {
    let (vms_addr, vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let certs = certs();
    let text = config_with_redis(&certs, vms_addr, redis, DEMO_VMS, mfa_extra);
    let clock = Clock::manual(at(ENFORCED));
    let mut gws = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..instances {
        let dir = tempfile::tempdir().unwrap();
        gws.push(start_gateway(dir.path(), &text, &certs.ca_pem, clock.clone()).await);
        dirs.push(dir);
    }
    Fleet {
        gws,
        vms,
        _dirs: dirs,
        _certs: certs,
    }
}

fn stripped(gw: &Gw) -> u64 {
    gw.gateway().metrics.mfa_count(MfaEvent::SessionStripped)
}

/// `user` logs in with a code on `a`; the approved session works on `b`; the user logs out on
/// `a`; then `b` must strip that session's cookie. The demo VMS ends the session on logout by
/// itself, so its 401 alone proves nothing: `b`'s `session_stripped` count is the gateway's part.
/// Returns how long `b` took.
async fn logout_on_a_ends_the_session_on_b(a: &Gw, b: &Gw, user: &str, secret: &[u8]) -> Duration {
    let browser = client(a);
    let released = login_with_code(&browser, a, user, secret).await;
    let cookies = cookie_header(&released);
    assert!(
        cookies.contains("VMSSESSION=") && cookies.contains("__Host-mfagw="),
        "{cookies}"
    );
    let on_b = plain_client(b.addr, &b.ca_pem);
    let me = async || {
        on_b.get(url(b, "/api/me"))
            .header("cookie", &cookies)
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    let before = stripped(b);
    assert_eq!(me().await.unwrap(), 200, "approved session works on B");
    assert_eq!(stripped(b), before, "and B let it pass");
    let out = browser.get(url(a, "/logout")).send().await.unwrap();
    assert!(out.status().is_redirection() || out.status().is_success());
    eventually(
        Duration::from_secs(10),
        "B strips the session logged out on A",
        async || {
            let status = me().await;
            stripped(b) > before && status.is_ok_and(|s| s == 401)
        },
    )
    .await
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_session_on_another() {
    let redis = RedisProc::start();
    let f = fleet(&format!("url = \"{}\"", redis.url()), "", 2).await;
    let (a, b) = (&f.gws[0], &f.gws[1]);
    let secret = enroll(&client(a), a, "msp").await;
    let took = logout_on_a_ends_the_session_on_b(a, b, "msp", &secret).await;
    eprintln!("scale-out: logout on A seen by B after {took:?}");
}

#[tokio::test]
async fn every_flow_works_on_a_redis_cluster() {
    let cluster = Cluster::start(3).await;
    let f = fleet(
        &redis_lines("cluster", &cluster.urls(), None),
        "max_failures = 3\nlock_duration = \"60s\"",
        2,
    )
    .await;
    let (a, b) = (&f.gws[0], &f.gws[1]);

    // Enrollment on A; a code challenge on B.
    let admin = enroll(&client(a), a, "admin").await;
    let c = client(b);
    let r = login_with_code(&c, b, "admin", &admin).await;
    assert_eq!(location(&r), "/home");
    assert_eq!(c.get(url(b, "/home")).send().await.unwrap().status(), 200);

    // The revocation feed (one stream key) carries a logout from A to B.
    logout_on_a_ends_the_session_on_b(a, b, "admin", &admin).await;

    // The expiry sweeper: a withheld login whose challenge expired is ended at the VMS, once,
    // although both instances sweep.
    let expired = |g: &Gw| g.gateway().metrics.mfa_count(MfaEvent::ChallengeExpired);
    let c = client(a);
    let r = login(&c, a, "customer").await;
    assert_eq!(location(&r), "/.mfa/enroll");
    let (_, logouts) = f.vms.stats();
    let claimed = expired(a) + expired(b);
    // An enrollment step waits `mfa.enrollment_ttl` (30 minutes).
    a.clock.advance(1801);
    tokio::join!(
        mfa_gateway::mfa::sweeper::sweep_once(a.gateway()),
        mfa_gateway::mfa::sweeper::sweep_once(b.gateway()),
    );
    assert_eq!(expired(a) + expired(b), claimed + 1, "claimed exactly once");
    eventually(
        Duration::from_secs(10),
        "withheld VMS session ended",
        async || f.vms.stats().1 > logouts,
    )
    .await;
    assert_eq!(
        c.get(url(a, "/.mfa/enroll")).send().await.unwrap().status(),
        403,
        "the expired challenge is gone"
    );

    // Lock-out counting: the user's counter, lock and level keys share one hash slot, and the
    // lock holds on every instance.
    let msp = enroll(&client(b), b, "msp").await;
    let c = client(a);
    assert_eq!(location(&login(&c, a, "msp").await), "/.mfa/verify");
    a.clock.advance(30);
    let good = totp::code_at(&msp, a.clock.unix());
    let wrong = if good == "123456" { "654321" } else { "123456" };
    for expected in [200, 200, 429] {
        let r = post_code(&c, a, "/.mfa/verify", wrong).await;
        assert_eq!(r.status(), expected);
    }
    let c2 = client(b);
    assert_eq!(location(&login(&c2, b, "msp").await), "/.mfa/verify");
    let r = post_code(&c2, b, "/.mfa/verify", &good).await;
    assert_eq!(r.status(), 429, "locked on the other instance too");
    assert!(!sets_vms_session(&r));

    // The keys really are spread over the cluster's nodes.
    let mut holders = 0;
    for n in &cluster.nodes {
        let keys: u64 = redis_query(n.port, &["DBSIZE"]).await.unwrap();
        holders += usize::from(keys > 0);
    }
    assert!(holders >= 2, "keys on {holders} of 3 nodes");
}

/// Sentinel name of the monitored master.
const MASTER: &str = "m";

async fn sentinel_master(port: u16) -> Option<HashMap<String, String>> {
    redis_query(port, &["SENTINEL", "MASTER", MASTER])
        .await
        .ok()
}

/// The master's port as this sentinel names it.
async fn named_master(port: u16) -> Option<u16> {
    let addr: Vec<String> = redis_query(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER])
        .await
        .ok()?;
    addr.get(1)?.parse().ok()
}

/// Whether the node on `port` is a master with `replicas` replicas online.
async fn master_with_replicas(port: u16, replicas: usize) -> bool {
    redis_query::<String>(port, &["INFO", "replication"])
        .await
        .is_ok_and(|i| {
            info_field(&i, "role").as_deref() == Some("master")
                && info_field(&i, "connected_slaves").and_then(|n| n.parse().ok()) == Some(replicas)
                && (0..replicas).all(|k| {
                    info_field(&i, &format!("slave{k}")).is_some_and(|s| s.contains("state=online"))
                })
        })
}

async fn has_secret(port: u16, user: &str) -> bool {
    redis_query::<i64>(port, &["HEXISTS", &format!("t:{{u:{user}}}"), "secret"])
        .await
        .is_ok_and(|n| n == 1)
}

#[tokio::test]
async fn sentinel_failover_is_followed_and_acknowledged_enrollments_survive() {
    let first = RedisNode::start(&[]);
    let first_port = first.port.to_string();
    let mut second = RedisNode::start(&["--replicaof", "127.0.0.1", &first_port]);
    eventually(Duration::from_secs(20), "replica in sync", async || {
        master_with_replicas(first.port, 1).await
    })
    .await;
    let sentinels: Vec<RedisNode> = (0..3)
        .map(|_| RedisNode::sentinel(MASTER, first.port))
        .collect();
    for s in &sentinels {
        eventually(
            Duration::from_secs(30),
            "each sentinel knows the replica and the other sentinels",
            async || {
                sentinel_master(s.port).await.is_some_and(|m| {
                    m.get("num-slaves").map(String::as_str) == Some("1")
                        && m.get("num-other-sentinels").map(String::as_str) == Some("2")
                })
            },
        )
        .await;
    }
    let urls: Vec<String> = sentinels.iter().map(RedisNode::url).collect();
    let f = fleet(&redis_lines("sentinel", &urls, Some(MASTER)), "", 1).await;
    let gw = &f.gws[0];

    // With the replica silent, no enrollment is confirmed: the user is not told "enrolled"
    // about a write only the master has.
    second.signal("-STOP");
    let (r, _) = try_enroll(&client(gw), gw, "msp").await.unwrap();
    second.signal("-CONT");
    assert_eq!(
        r.status(),
        503,
        "enrollment without a replica's confirmation"
    );
    assert!(!sets_vms_session(&r));

    // A confirmed enrollment is on the replica the moment the user is told.
    let admin = enroll(&client(gw), gw, "admin").await;
    assert!(has_secret(second.port, "admin").await, "on the replica");

    // Planned switch-over: the old master stays up as a replica (the sentinels end its client
    // connections); the gateway finds the new master.
    eventually(
        Duration::from_secs(30),
        "the sentinels accept a fail-over",
        async || {
            redis_query::<String>(sentinels[0].port, &["SENTINEL", "FAILOVER", MASTER])
                .await
                .is_ok()
        },
    )
    .await;
    eventually(Duration::from_secs(30), "switch-over done", async || {
        named_master(sentinels[0].port).await == Some(second.port)
            && master_with_replicas(second.port, 1).await
    })
    .await;
    let took = eventually(
        Duration::from_secs(30),
        "logins with MFA work after the switch-over",
        async || {
            try_login_with_code(&client(gw), gw, "admin", &admin)
                .await
                .is_ok()
        },
    )
    .await;
    eprintln!("sentinel: logins work {took:?} after the switch-over completed");

    // An enrollment confirmed by the new master's replica survives the new master's crash.
    let customer = enroll(&client(gw), gw, "customer").await;
    assert!(has_secret(first.port, "customer").await, "on the replica");
    second.kill();
    let took = eventually(
        Duration::from_secs(30),
        "logins with MFA work again after the master was killed",
        async || {
            try_login_with_code(&client(gw), gw, "customer", &customer)
                .await
                .is_ok()
        },
    )
    .await;
    eprintln!("sentinel: logins work again {took:?} after the master was killed");
    login_with_code(&client(gw), gw, "admin", &admin).await;
    for s in &sentinels {
        eventually(
            Duration::from_secs(10),
            "every sentinel names the promoted replica",
            async || named_master(s.port).await == Some(first.port),
        )
        .await;
    }

    // The sentinels name another master while the connection to the old one stays up (as
    // for a master cut off from the sentinels): the periodic check moves the gateway over.
    let third = RedisNode::start(&[]);
    let third_port = third.port.to_string();
    for s in &sentinels {
        let _: String = redis_query(s.port, &["SENTINEL", "REMOVE", MASTER])
            .await
            .unwrap();
        let _: String = redis_query(
            s.port,
            &["SENTINEL", "MONITOR", MASTER, "127.0.0.1", &third_port, "2"],
        )
        .await
        .unwrap();
    }
    let took = eventually(
        SENTINEL_RECHECK * 3 + Duration::from_secs(5),
        "the gateway uses the master the sentinels now name (empty: enroll again)",
        async || {
            try_login(&client(gw), gw, "admin")
                .await
                .is_ok_and(|r| location(&r) == "/.mfa/enroll")
        },
    )
    .await;
    eprintln!("sentinel: moved to the newly named master after {took:?}");
}

/// Sentinels and master over TLS with a private CA, each with its own password: the gateway
/// verifies both against `redis.ca`, sends `redis.sentinel_password` to the sentinels and
/// `redis.password` to the master, and refuses to start talking without the right one.
#[tokio::test]
async fn sentinel_over_tls_with_a_private_ca_and_passwords() {
    let c = certs();
    let ca = c.cert.parent().unwrap().join("ca.pem");
    let master = RedisProc::start_tls(&c.cert, &c.key, &ca, "master-pass");
    let sentinel = RedisNode::tls_sentinel(MASTER, master.port, &c, "sentinel-pass", "master-pass");
    let (vms_addr, _vms, stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    std::mem::forget(stop);
    let sentinel_url = format!("rediss://localhost:{}", sentinel.port);
    let redis = |sentinel_password: &str| {
        format!(
            "{}\nca = \"{}\"\npassword = {{ value = \"master-pass\" }}\n\
             sentinel_password = {{ value = \"{sentinel_password}\" }}",
            redis_lines(
                "sentinel",
                std::slice::from_ref(&sentinel_url),
                Some(MASTER)
            ),
            ca.display()
        )
    };
    // A gateway (and the directory its files live in) whose sentinels get this password.
    let start = async |sentinel_password: &str| {
        let dir = tempfile::tempdir().unwrap();
        let text = config_with_redis(&c, vms_addr, &redis(sentinel_password), DEMO_VMS, "")
            .replace(
                "trusted_proxies = []",
                "trusted_proxies = []\nready_requires = [\"upstream\", \"store\"]",
            );
        let clock = Clock::manual(at("2022-02-01T09:00:00Z"));
        let gw = start_gateway(dir.path(), &text, &c.ca_pem, clock).await;
        (gw, dir)
    };
    let (gw, _dir) = start("sentinel-pass").await;
    eventually(
        Duration::from_secs(20),
        "ready through the TLS sentinel",
        async || {
            client(&gw)
                .get(url(&gw, "/.mfa/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    let r = login(&client(&gw), &gw, "customer").await;
    assert_eq!(
        location(&r),
        "/.mfa/enroll",
        "state read from the TLS master the sentinel named"
    );

    // The wrong sentinel password: the sentinel refuses, so Redis is unavailable (fail closed;
    // the gateway below makes readiness depend on Redis).
    let (gw, _dir) = start("wrong").await;
    let ready = client(&gw)
        .get(url(&gw, "/.mfa/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "{:?}", ready.text().await);
}

/// A master with one replica and three sentinels watching it.
async fn sentinel_set() -> (RedisNode, RedisNode, Vec<RedisNode>) {
    let first = RedisNode::start(&[]);
    let first_port = first.port.to_string();
    let second = RedisNode::start(&["--replicaof", "127.0.0.1", &first_port]);
    eventually(Duration::from_secs(20), "replica in sync", async || {
        master_with_replicas(first.port, 1).await
    })
    .await;
    let sentinels: Vec<RedisNode> = (0..3)
        .map(|_| RedisNode::sentinel(MASTER, first.port))
        .collect();
    for s in &sentinels {
        eventually(
            Duration::from_secs(30),
            "each sentinel knows the replica and the other sentinels",
            async || {
                sentinel_master(s.port).await.is_some_and(|m| {
                    m.get("num-slaves").map(String::as_str) == Some("1")
                        && m.get("num-other-sentinels").map(String::as_str) == Some("2")
                })
            },
        )
        .await;
    }
    (first, second, sentinels)
}

/// Finding 10: under Sentinel, the count and lock of every attempt at a code are on the replica
/// before the code is checked, and a logout's revocation is on it when the logout is answered,
/// so a fail-over cannot hand an attacker more guesses or revive a logged-out session. With
/// the replica connected but not answering, no code is checked at all (503).
#[tokio::test]
async fn sentinel_lock_out_counts_and_logouts_are_on_the_replica_when_answered() {
    let (first, second, sentinels) = sentinel_set().await;
    let urls: Vec<String> = sentinels.iter().map(RedisNode::url).collect();
    let f = fleet(
        &redis_lines("sentinel", &urls, Some(MASTER)),
        "max_failures = 3",
        1,
    )
    .await;
    let gw = &f.gws[0];
    let admin = enroll(&client(gw), gw, "admin").await;
    let fails = async |port: u16| -> Option<i64> {
        redis_query(port, &["GET", "t:{u:admin}:fails"])
            .await
            .unwrap()
    };

    let c = client(gw);
    assert_eq!(location(&login(&c, gw, "admin").await), "/.mfa/verify");
    gw.clock.advance(30);
    let now = gw.clock.unix();
    let wrong = if totp::code_at(&admin, now) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = post_code(&c, gw, "/.mfa/verify", wrong).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        fails(second.port).await,
        Some(1),
        "on the replica when answered"
    );

    // The replica still connected but silent: the attempt cannot be acknowledged, so not even
    // the right code is checked.
    second.signal("-STOP");
    let r = post_code(&c, gw, "/.mfa/verify", &totp::code_at(&admin, now)).await;
    second.signal("-CONT");
    assert_eq!(r.status(), 503, "no code checked without the replica");
    assert!(!sets_vms_session(&r));
    // That attempt was counted on the master all the same (failing closed).
    assert_eq!(fails(first.port).await, Some(2));

    // The last attempt sets the lock, which the replica has when the user is told.
    let r = post_code(&c, gw, "/.mfa/verify", wrong).await;
    assert_eq!(r.status(), 429);
    let lock: i64 = redis_query(second.port, &["PTTL", "t:{u:admin}:lock"])
        .await
        .unwrap();
    assert!(lock > 0, "lock on the replica: {lock}");

    // A logout's revocation is on the replica when the logout is answered.
    let customer = client(gw);
    enroll(&customer, gw, "customer").await;
    let before: i64 = redis_query(first.port, &["XLEN", "t:{rev}"]).await.unwrap();
    let r = customer.get(url(gw, "/logout")).send().await.unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());
    let on_replica: i64 = redis_query(second.port, &["XLEN", "t:{rev}"])
        .await
        .unwrap();
    assert_eq!(
        on_replica,
        before + 1,
        "the logout's revocation is on the replica"
    );
}
