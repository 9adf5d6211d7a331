//! Login throttling: after `max_failures` failed logins within `window`, for one username or
//! from one client address, further attempts answer 429 with `Retry-After` until the oldest
//! failure leaves the window. The correct password does not help while blocked, so a password
//! cannot be brute-forced through the API.
//!
//! State is per process (several API processes each count on their own, which still bounds an
//! attacker to `max_failures x processes` guesses per window).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept (bounds memory under a spray of usernames).
const SWEEP_ABOVE: usize = 10_000;

pub struct LoginThrottle {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> Vec<String> {
        let mut keys = vec![format!("u:{}", username.to_lowercase())];
        if let Some(ip) = ip {
            keys.push(format!("ip:{ip}"));
        }
        keys
    }

    /// `Err(seconds to wait)` when this username or address is blocked.
    pub fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for key in Self::keys(username, ip) {
            if let Some(times) = map.get_mut(&key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    times.pop_front();
                }
                if times.len() >= self.max_failures
                    && let Some(oldest) = times.front()
                {
                    wait = wait.max(self.window.saturating_sub(now.duration_since(*oldest)));
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait.as_secs_f64().ceil().max(1.0) as u64) }
    }

    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        for key in Self::keys(username, ip) {
            let times = map.entry(key).or_default();
            times.push_back(now);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_per_username_and_per_address() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(throttle.check("alice", Some(a)).is_ok());
            throttle.record_failure("alice", Some(a));
        }
        let wait = throttle.check("alice", Some(b)).expect_err("username blocked from any address");
        assert!((1..=60).contains(&wait));
        assert!(throttle.check("ALICE", Some(b)).is_err(), "case-insensitive");
        assert!(throttle.check("bob", Some(a)).is_err(), "address blocked for any username");
        assert!(throttle.check("bob", Some(b)).is_ok());
    }

    #[test]
    fn failures_leave_the_window() {
        let throttle = LoginThrottle::new(1, Duration::from_millis(30));
        throttle.record_failure("alice", None);
        assert!(throttle.check("alice", None).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(throttle.check("alice", None).is_ok());
    }
}
