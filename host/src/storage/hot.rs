//! [`HotObjects`]: the filesystem store's memory of small objects it read a moment ago, so that
//! a popular variant is answered without a trip to the blocking pool. Measured (perf, wrk on one
//! 12 KiB variant): a third of the serving process' time went to waking a blocking-pool thread
//! and being woken back, once per request; the read itself was noise.
//!
//! Safe because keys never get other content: an entry can only be stale by having been
//! deleted. This process' own writes and deletes forget the key at once; a delete by another
//! process on the same folder is seen within [`FRESH_FOR`]. Bounded by [`BUDGET`] bytes in all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ObjectMeta;

/// How long an object read from disk is answered from memory without looking again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Bytes held at most, over every entry.
pub const BUDGET: usize = 32 << 20;

#[derive(Default)]
pub struct HotObjects {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Entry>,
    bytes: usize,
    /// Forgets so far: a read begun before one may hold what it forgot.
    generation: u64,
}

struct Entry {
    at: Instant,
    meta: ObjectMeta,
    bytes: Bytes,
}

impl HotObjects {
    /// The object under `key` and its bytes, when read less than [`FRESH_FOR`] ago.
    pub fn get(&self, key: &str) -> Option<(ObjectMeta, Bytes)> {
        let inner = crate::sync::lock(&self.inner);
        let entry = inner.by_key.get(key)?;
        (entry.at.elapsed() < FRESH_FOR).then(|| (entry.meta.clone(), entry.bytes.clone()))
    }

    /// The generation to name in [`HotObjects::put`]: read it before the disk.
    pub fn generation(&self) -> u64 {
        crate::sync::lock(&self.inner).generation
    }

    /// Keeps a whole object read from disk since `generation` began (a read that a write or
    /// delete of any key overtook is dropped).
    pub fn put(&self, meta: ObjectMeta, bytes: Bytes, generation: u64) {
        let mut inner = crate::sync::lock(&self.inner);
        if inner.generation != generation || bytes.len() > BUDGET / 8 {
            return;
        }
        if inner.bytes + bytes.len() > BUDGET {
            inner.by_key.retain(|_, e| e.at.elapsed() < FRESH_FOR);
            inner.bytes = inner.by_key.values().map(|e| e.bytes.len()).sum();
            if inner.bytes + bytes.len() > BUDGET {
                inner.by_key.clear();
                inner.bytes = 0;
            }
        }
        inner.bytes += bytes.len();
        let entry = Entry { at: Instant::now(), meta: meta.clone(), bytes };
        if let Some(old) = inner.by_key.insert(meta.key, entry) {
            inner.bytes -= old.bytes.len();
        }
    }

    /// Forgets `key`: it is being written or deleted.
    pub fn forget(&self, key: &str) {
        let mut inner = crate::sync::lock(&self.inner);
        if let Some(old) = inner.by_key.remove(key) {
            inner.bytes -= old.bytes.len();
        }
        inner.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str, size: usize) -> ObjectMeta {
        ObjectMeta { key: key.into(), size: size as u64, last_modified: None, etag: Some("\"e\"".into()) }
    }

    #[test]
    fn answers_for_a_moment_forgets_on_delete_and_stays_within_budget() {
        let hot = HotObjects::default();
        assert!(hot.get("p/a").is_none());
        hot.put(meta("p/a", 3), Bytes::from_static(b"abc"), hot.generation());
        assert_eq!(hot.get("p/a").map(|(m, b)| (m.size, b)), Some((3, Bytes::from_static(b"abc"))));
        hot.forget("p/a");
        assert!(hot.get("p/a").is_none(), "a deleted object is not answered");

        let began = hot.generation();
        hot.forget("p/a");
        hot.put(meta("p/a", 3), Bytes::from_static(b"abc"), began);
        assert!(hot.get("p/a").is_none(), "a read overtaken by a delete is dropped");

        let big = Bytes::from(vec![0u8; BUDGET / 8]);
        for i in 0..20 {
            hot.put(meta(&format!("p/{i}"), big.len()), big.clone(), hot.generation());
        }
        let inner = crate::sync::lock(&hot.inner);
        assert!(inner.bytes <= BUDGET, "{} bytes held", inner.bytes);
        assert_eq!(inner.bytes, inner.by_key.values().map(|e| e.bytes.len()).sum::<usize>());
    }
}
