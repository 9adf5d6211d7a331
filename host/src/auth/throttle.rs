//! Login throttling, keyed so that an attacker can slow only themselves down.
//!
//! - Per (username, client address): after `max_failures` attempts within `window` that did not
//!   succeed, that pair answers 429 with `Retry-After` until the oldest leaves the window. The
//!   correct password does not help while blocked, so a password cannot be brute-forced from one
//!   address.
//! - Per client address, whatever the username: `max_failures x ADDRESS_FACTOR` (a spray of
//!   usernames from one address; a NAT of honest users still has room).
//! - Per username, across addresses: only a signal. When a username collects
//!   `max_failures x UNDER_ATTACK_FACTOR` failures in the window (a distributed guess), each
//!   address gets a third of its allowance for that username. It never blocks the owner's
//!   address, which has not failed: 40 failures for `victim` from one address used to lock
//!   `victim` out everywhere, su included.
//!
//! An attempt is counted before its password is hashed ([`LoginThrottle::begin`]), so a burst of
//! parallel logins cannot pass the check all at once; a success takes its own attempt back
//! ([`LoginThrottle::succeeded`]), and so does an attempt that never reached hashing.
//!
//! State is per process (several API processes each count on their own, which still bounds an
//! attacker to `max_failures x processes` guesses per window).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept early (expired ones also go once a window).
const SWEEP_ABOVE: usize = 10_000;
/// An address may fail this many times more than one (username, address) pair.
pub const ADDRESS_FACTOR: usize = 3;
/// Failures of one username, across addresses, that mark it as under attack.
pub const UNDER_ATTACK_FACTOR: usize = 5;

pub struct LoginThrottle {
    max_failures: usize,
    window: Duration,
    state: Mutex<State>,
}

struct State {
    attempts: HashMap<String, VecDeque<Instant>>,
    swept: Instant,
}

/// One counted attempt, to be taken back exactly ([`LoginThrottle::succeeded`], `withdraw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt(Instant);

/// The keys of one login attempt: (pair, address, username). Callers pass only valid usernames
/// (at most 64 ASCII characters), so a key's size is bounded. An IPv6 client counts by its /64:
/// one host commonly holds a whole /64 and could rotate through it.
fn keys(username: &str, ip: Option<IpAddr>) -> [String; 3] {
    let user = username.to_ascii_lowercase();
    let ip = match ip {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(v4) => v4.to_string(),
        None => "unknown".to_owned(),
    };
    [format!("pair:{ip}|{user}"), format!("ip:{ip}"), format!("user:{user}")]
}

impl LoginThrottle {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        let state = State { attempts: HashMap::new(), swept: Instant::now() };
        Self { max_failures: max_failures.max(1), window, state: Mutex::new(state) }
    }

    /// Counts an attempt for this username from this address, or `Err(seconds to wait)` when it
    /// is blocked (and then nothing is counted).
    pub fn begin(&self, username: &str, ip: Option<IpAddr>) -> Result<Attempt, u64> {
        let now = Instant::now();
        let [pair, address, user] = keys(username, ip);
        let mut state = crate::sync::lock(&self.state);
        if state.attempts.len() > SWEEP_ABOVE || now.duration_since(state.swept) >= self.window {
            state.attempts.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
            state.swept = now;
        }
        let map = &mut state.attempts;
        let under_attack = self.live(map, &user, now) >= self.max_failures * UNDER_ATTACK_FACTOR;
        let pair_limit = if under_attack { (self.max_failures / 3).max(1) } else { self.max_failures };
        let address_limit = self.max_failures * ADDRESS_FACTOR;
        let wait = self.wait(map, &pair, pair_limit, now).max(self.wait(map, &address, address_limit, now));
        if !wait.is_zero() {
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        for key in [pair, address, user] {
            let times = map.entry(key).or_default();
            times.push_back(now);
            // The username's signal needs the most entries of the three, and twice its threshold:
            // kept at the threshold exactly, one success (which takes its attempt back) would
            // switch the signal off mid-attack and hand every blocked pair its full allowance.
            while times.len() > 2 * self.max_failures * UNDER_ATTACK_FACTOR {
                times.pop_front();
            }
        }
        Ok(Attempt(now))
    }

    /// The attempt succeeded: the pair starts afresh and the attempt no longer counts against
    /// the address or the username.
    pub fn succeeded(&self, username: &str, ip: Option<IpAddr>, attempt: Attempt) {
        let [pair, address, user] = keys(username, ip);
        let mut state = crate::sync::lock(&self.state);
        state.attempts.remove(&pair);
        for key in [address, user] {
            take_back(&mut state.attempts, &key, attempt);
        }
    }

    /// The attempt never reached the password check (the host was busy): it does not count.
    pub fn withdraw(&self, username: &str, ip: Option<IpAddr>, attempt: Attempt) {
        let mut state = crate::sync::lock(&self.state);
        for key in keys(username, ip) {
            take_back(&mut state.attempts, &key, attempt);
        }
    }

    /// Attempts of `key` still in the window (older ones are dropped).
    fn live(&self, map: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) -> usize {
        let Some(times) = map.get_mut(key) else { return 0 };
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            times.pop_front();
        }
        times.len()
    }

    /// How long `key` must wait before it is under `limit` again.
    fn wait(&self, map: &mut HashMap<String, VecDeque<Instant>>, key: &str, limit: usize, now: Instant) -> Duration {
        let count = self.live(map, key, now);
        if count < limit {
            return Duration::ZERO;
        }
        // The attempt that must leave the window for the count to drop below the limit.
        let times = &map[key];
        times.get(count - limit).map_or(Duration::ZERO, |t| self.window.saturating_sub(now.duration_since(*t)))
    }
}

/// Removes `attempt` itself from `key` (not whichever came last: a success interleaved with a
/// spray must not erase the spray's entries).
fn take_back(map: &mut HashMap<String, VecDeque<Instant>>, key: &str, attempt: Attempt) {
    if let Some(times) = map.get_mut(key)
        && let Some(at) = times.iter().rposition(|t| *t == attempt.0)
    {
        times.remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn blocks_a_pair_after_the_limit_but_not_the_owner_elsewhere() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(throttle.begin("alice", ip("10.0.0.1")).is_ok());
        }
        let wait = throttle.begin("alice", ip("10.0.0.1")).expect_err("pair blocked");
        assert!((1..=60).contains(&wait));
        assert!(throttle.begin("ALICE", ip("10.0.0.1")).is_err(), "case-insensitive");
        assert!(throttle.begin("alice", ip("10.0.0.2")).is_ok(), "the owner's own address is not locked out");
        assert!(throttle.begin("bob", ip("10.0.0.1")).is_ok(), "other usernames from the address still try");
    }

    #[test]
    fn an_address_spraying_usernames_is_blocked() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        for n in 0..2 * ADDRESS_FACTOR {
            assert!(throttle.begin(&format!("user{n}"), ip("10.0.0.9")).is_ok(), "attempt {n}");
        }
        assert!(throttle.begin("someone-else", ip("10.0.0.9")).is_err());
        assert!(throttle.begin("someone-else", ip("10.0.0.10")).is_ok());
    }

    #[test]
    fn a_username_under_attack_slows_new_addresses_but_never_blocks_a_clean_one() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        // 15 failures from five addresses: the username is under attack.
        for n in 0..3 * UNDER_ATTACK_FACTOR {
            let _ = throttle.begin("victim", ip(&format!("10.1.0.{}", n / 3)));
        }
        assert!(throttle.begin("victim", ip("10.2.0.1")).is_ok(), "a clean address gets its first try");
        assert!(throttle.begin("victim", ip("10.2.0.1")).is_err(), "then a third of the allowance");
    }

    #[test]
    fn the_owners_success_does_not_lift_an_attack_off_the_attackers() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        for n in 0..40 {
            let _ = throttle.begin("victim", ip(&format!("10.1.{}.{}", n / 200, n % 200 + 1)));
        }
        assert!(throttle.begin("victim", ip("10.9.9.9")).is_ok(), "the attacker's first try");
        assert!(throttle.begin("victim", ip("10.9.9.9")).is_err(), "then blocked: a third of the allowance");
        let owner = throttle.begin("victim", ip("10.8.8.8")).expect("the owner's own address");
        throttle.succeeded("victim", ip("10.8.8.8"), owner);
        assert!(throttle.begin("victim", ip("10.9.9.9")).is_err(), "still under attack: still blocked");
    }

    #[test]
    fn success_and_withdrawal_take_the_attempt_back() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        for _ in 0..5 {
            let attempt = throttle.begin("alice", ip("10.0.0.1")).expect("allowed");
            throttle.succeeded("alice", ip("10.0.0.1"), attempt);
        }
        let attempt = throttle.begin("alice", ip("10.0.0.1")).expect("allowed");
        throttle.withdraw("alice", ip("10.0.0.1"), attempt);
        throttle.begin("alice", ip("10.0.0.1")).expect("allowed");
        throttle.begin("alice", ip("10.0.0.1")).expect("allowed");
        assert!(throttle.begin("alice", ip("10.0.0.1")).is_err());
    }

    #[test]
    fn a_success_takes_back_its_own_attempt_not_a_sprays() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        let mine = throttle.begin("me", ip("10.0.0.1")).expect("allowed");
        for n in 0..2 * ADDRESS_FACTOR - 1 {
            std::thread::sleep(Duration::from_millis(1));
            let _ = throttle.begin(&format!("sprayed{n}"), ip("10.0.0.1"));
        }
        throttle.succeeded("me", ip("10.0.0.1"), mine);
        assert!(throttle.begin("another", ip("10.0.0.1")).is_ok(), "one slot was mine");
        assert!(throttle.begin("yet-another", ip("10.0.0.1")).is_err(), "the spray still counts");
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        for n in 0..2 {
            throttle.begin("alice", ip(&format!("2001:db8:1:2::{n:x}"))).expect("allowed");
        }
        assert!(throttle.begin("alice", ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert!(throttle.begin("alice", ip("2001:db8:1:3::1")).is_ok(), "another /64");
    }

    #[test]
    fn attempts_leave_the_window() {
        let throttle = LoginThrottle::new(1, Duration::from_millis(30));
        throttle.begin("alice", None).expect("first");
        assert!(throttle.begin("alice", None).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(throttle.begin("alice", None).is_ok());
    }
}
