//! The host's native encoders, run for plugins (`codecs.encode`): a bounded pool that a call
//! waits on without polling, for no longer than the call's deadline.
//!
//! `encode` is a plain host function, so the call cannot be dropped while it is in there: the
//! encode itself runs on a thread of its own, and the call waits for a free encoder and then for
//! the result, both until its deadline at most (the deadline then drops the call at its next
//! yield). The encoder slot travels with the thread, so an encode that outlives its caller still
//! counts against the bound until it ends: a plugin cannot pile up work past its deadline.

use std::sync::{Condvar, LazyLock, Mutex, PoisonError};
use std::time::Instant;

/// At most this many host encodes run at once, over every call of every engine of this process.
fn max_encodes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

static ENCODERS: LazyLock<Pool> = LazyLock::new(|| Pool::new(max_encodes()));

/// Runs `encode` on the host's encoders, within `deadline`: the error says which wait ran out.
pub(super) fn run_until<F>(deadline: Instant, encode: F) -> Result<Vec<u8>, String>
where
    F: FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
{
    let Some(slot) = ENCODERS.acquire(deadline) else {
        return Err("the host's encoders stayed busy until the plugin's deadline".into());
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("mbk-host-encode".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(encode());
        })
        .map_err(|e| format!("cannot start a host encoder: {e}"))?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(remaining).unwrap_or_else(|_| Err("ran past the plugin's deadline".into()))
}

/// A counting semaphore on a condition variable: waiters sleep until a slot frees or their
/// deadline passes, whichever is first.
struct Pool {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// One of the pool's slots; given back (and one waiter woken) when dropped.
struct Slot<'a>(&'a Pool);

impl Pool {
    fn new(max: usize) -> Pool {
        Pool { running: Mutex::new(0), freed: Condvar::new(), max: max.max(1) }
    }

    /// A slot, or `None` when none freed before `deadline`.
    fn acquire(&self, deadline: Instant) -> Option<Slot<'_>> {
        let mut running = crate::sync::lock(&self.running);
        while *running >= self.max {
            let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            // Poisoning cannot break a counter (see `crate::sync::lock`).
            running = self.freed.wait_timeout(running, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        *running += 1;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *crate::sync::lock(&self.0.running) -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Pool;

    #[test]
    fn a_full_pool_waits_until_the_deadline_and_no_longer() {
        let pool = Pool::new(1);
        let _held = pool.acquire(Instant::now()).expect("a free slot is taken at once");
        let started = Instant::now();
        assert!(pool.acquire(started + Duration::from_millis(50)).is_none());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn a_freed_slot_wakes_a_waiter() {
        let pool = Pool::new(1);
        let held = pool.acquire(Instant::now()).expect("a free slot");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| pool.acquire(Instant::now() + Duration::from_secs(30)).is_some());
            std::thread::sleep(Duration::from_millis(20));
            drop(held);
            assert!(waiter.join().expect("joins"), "the waiter got the freed slot");
        });
    }
}
