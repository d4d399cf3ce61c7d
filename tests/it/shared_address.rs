//! Finding 7: one address in front of everyone. With `server.trusted_proxies = []` behind a
//! load balancer every client has one address; one user's wrong codes must not lock the other
//! users out, while a client guessing at many users is still limited by the address.

use mfa_gateway::auth::totp;

use crate::mfa_flow::{enroll, world};
use crate::support::browser::{location, login, post_code, sets_vms_session};
use crate::support::*;

const ENFORCED: &str = "2022-02-01T09:00:00Z";

/// A six-digit code none of the accepted steps around `now` produces.
fn wrong_code(secret: &[u8], now: u64) -> String {
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp::code_at(secret, *t))
        .collect();
    (0..10u32)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[tokio::test]
async fn an_address_lock_spares_users_who_signed_in_from_it_before() {
    // Five failures lock a user; six from one address lock the address.
    let w = world(ENFORCED, "max_failures = 5\nmax_failures_per_address = 6").await;
    let port = w.redis.port;
    let customer = enroll(&client(&w.gw), &w, "customer").await;
    let msp = enroll(&client(&w.gw), &w, "msp").await;
    let admin = enroll(&client(&w.gw), &w, "admin").await;
    // Every client of the test comes from 127.0.0.1. The right codes above noted each
    // (address, user) pair, for 30 days, in the address's hash slot.
    let pair = |u: &str| format!("t:{{a:127.0.0.1}}:ok:{u}");
    let ttl: i64 = redis_query(port, &["TTL", &pair("customer")])
        .await
        .unwrap();
    assert!(ttl > 29 * 86400 && ttl <= 30 * 86400, "ttl {ttl}");
    // The MSP and the administrator have never signed in from here (say, new hires).
    let _: i64 = redis_query(port, &["DEL", &pair("msp"), &pair("admin")])
        .await
        .unwrap();

    // Wrong codes for users not known at this address: four for the MSP, two for the
    // administrator. Neither user is locked (five each), but the address is (six).
    let now = w.gw.clock.unix();
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "msp").await), "/.mfa/verify");
    for _ in 0..4 {
        let r = post_code(&c, &w.gw, "/.mfa/verify", &wrong_code(&msp, now)).await;
        assert_eq!(r.status(), 200);
    }
    let c = client(&w.gw);
    assert_eq!(location(&login(&c, &w.gw, "admin").await), "/.mfa/verify");
    let r = post_code(&c, &w.gw, "/.mfa/verify", &wrong_code(&admin, now)).await;
    assert_eq!(r.status(), 200);
    let r = post_code(&c, &w.gw, "/.mfa/verify", &wrong_code(&admin, now)).await;
    assert_eq!(r.status(), 429, "the sixth failure locks the address");
    let gw = w.gw.gateway();
    assert!(gw.store.user_lock("admin").await.unwrap().is_none());
    assert!(gw.store.user_lock("msp").await.unwrap().is_none());

    // A sprayer from this address is refused for users not known here, even the right code.
    w.gw.clock.advance(30);
    let now = w.gw.clock.unix();
    let r = post_code(&c, &w.gw, "/.mfa/verify", &totp::code_at(&admin, now)).await;
    assert_eq!(r.status(), 429, "unknown pair: refused by the address");
    assert!(!sets_vms_session(&r));

    // The customer, who signed in from here before, is not locked out by the others.
    let c = client(&w.gw);
    assert_eq!(
        location(&login(&c, &w.gw, "customer").await),
        "/.mfa/verify"
    );
    let r = post_code(&c, &w.gw, "/.mfa/verify", &totp::code_at(&customer, now)).await;
    assert_eq!(
        r.status(),
        302,
        "known pair: the address lock does not apply"
    );
    assert!(sets_vms_session(&r));
    // Only by her own lock: her wrong codes are neither refused nor counted by the address,
    // and five of them lock her.
    let c = client(&w.gw);
    assert_eq!(
        location(&login(&c, &w.gw, "customer").await),
        "/.mfa/verify"
    );
    for i in 1..=5 {
        let r = post_code(&c, &w.gw, "/.mfa/verify", &wrong_code(&customer, now)).await;
        assert_eq!(r.status(), if i < 5 { 200 } else { 429 }, "failure {i}");
    }
    assert!(gw.store.user_lock("customer").await.unwrap().is_some());
    // The address's lock is what the sprayer left: still in place for the others.
    let lock: i64 = redis_query(port, &["PTTL", "t:{a:127.0.0.1}:lock"])
        .await
        .unwrap();
    assert!(lock > 0, "address lock {lock}");
    let fails: Option<i64> = redis_query(port, &["GET", "t:{a:127.0.0.1}:fails"])
        .await
        .unwrap();
    assert_eq!(fails, None, "her failures were not counted for the address");
}

#[tokio::test]
async fn sign_ins_all_from_one_address_are_reported() {
    let w = world(ENFORCED, "").await;
    let gw = w.gw.gateway();
    let now = w.gw.clock.unix();
    enroll(&client(&w.gw), &w, "customer").await;
    enroll(&client(&w.gw), &w, "msp").await;
    assert_eq!(
        gw.check_sign_in_addresses(w.gw.clock.unix()),
        None,
        "two users from one address are ordinary"
    );
    enroll(&client(&w.gw), &w, "admin").await;
    let found = gw
        .check_sign_in_addresses(w.gw.clock.unix())
        .expect("three users, all from 127.0.0.1, with trusted_proxies = []");
    assert_eq!(found.addr, "127.0.0.1");
    assert!(found.users == 3 && found.sign_ins >= 3, "{found:?}");
    assert!(
        gw.metrics
            .render()
            .contains("\nmfa_gateway_sign_ins_from_one_address 1\n")
    );
    // A day later, without new sign-ins, the metric goes back to 0.
    assert!(gw.check_sign_in_addresses(now + 2 * 86400).is_none());
    assert!(
        gw.metrics
            .render()
            .contains("\nmfa_gateway_sign_ins_from_one_address 0\n")
    );
}
