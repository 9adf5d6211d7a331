//! One way to take a lock: [`lock`].

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, poisoned or not. A panic while the lock was held leaves a poisoned mutex;
/// what the host keeps behind its locks (caches, counters, bookkeeping lists) stays valid
/// however a holder ended, so one panic must not turn every later caller into a panic too.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    #[test]
    fn a_poisoned_lock_is_still_taken() {
        let mutex = Mutex::new(1);
        let _ = std::panic::catch_unwind(|| {
            let _guard = mutex.lock();
            panic!("poison it");
        });
        assert!(mutex.is_poisoned());
        assert_eq!(*super::lock(&mutex), 1);
    }
}
