//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane).
//!
//! Hashing is deliberately slow and takes 19 MiB per hash, so it runs on threads of its own, one
//! per core ([`HashPool`]): an unauthenticated burst of logins used to run 64 at once on the
//! blocking pool and grow the process by 1.2 GiB. A caller that cannot get a slot within
//! [`HASH_WAIT`] is told [`Busy`] (the API answers 503 with `Retry-After`), so a burst queues
//! briefly and then sheds instead of piling up.
//! A login for an unknown user verifies against a fixed dummy hash of the same cost, so the
//! answer takes as long as a wrong password: no user enumeration by timing.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer inputs are refused before hashing: argon2 of megabytes is a cheap denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// How long a caller waits for a hashing slot before it is told the host is busy.
pub const HASH_WAIT: Duration = Duration::from_secs(2);

/// Every hashing slot stayed taken for [`HASH_WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password hashing slot is busy")]
pub struct Busy;

type Work = Box<dyn FnOnce() + Send>;

/// One thread per core that does nothing but hash, fed through a channel, and a semaphore with a
/// permit per thread for admission. Threads of their own rather than the blocking pool: the
/// blocking pool starts new threads under a burst, and every thread's allocator arena keeps the
/// memory of its last hashes (a 400-login burst grew the process by 387 MiB even with two hashes
/// at a time); here there are as many as the cores, each hashing in memory it keeps ([`MEMORY`]).
struct HashPool {
    slots: std::sync::Arc<Semaphore>,
    work: std::sync::mpsc::SyncSender<Work>,
}

static POOL: LazyLock<HashPool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (work, queue) = std::sync::mpsc::sync_channel::<Work>(threads);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
    for n in 0..threads {
        let queue = std::sync::Arc::clone(&queue);
        let spawned = std::thread::Builder::new().name(format!("mbk-argon2-{n}")).spawn(move || {
            loop {
                let next = crate::sync::lock(&queue).recv();
                match next {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    HashPool { slots: std::sync::Arc::new(Semaphore::new(threads)), work }
});

/// Runs `work` on a hashing thread once one is free (within [`HASH_WAIT`]).
async fn bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
    let pool = &*POOL;
    let slot = std::sync::Arc::clone(&pool.slots).acquire_owned();
    let permit = tokio::time::timeout(HASH_WAIT, slot).await.map_err(|_| Busy)?.map_err(|_| Busy)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The permit travels with the job and is given back when the hash is done, even if the
    // caller went away meanwhile: a permit per thread, so the channel always has room.
    pool.work
        .try_send(Box::new(move || {
            let _ = tx.send(work());
            drop(permit);
        }))
        .map_err(|_| Busy)?;
    rx.await.map_err(|_| Busy)
}

/// A hash of a random value nobody knows, with the production parameters.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    let _ = getrandom::fill(&mut secret);
    hash_blocking(&hex::encode(secret)).unwrap_or_default()
});

/// Why a password is refused, as a message for the `password` field.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters long"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes long"));
    }
    Ok(())
}

fn params() -> Params {
    Params::new(Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, Params::DEFAULT_P_COST, None).unwrap_or(Params::DEFAULT)
}

std::thread_local! {
    /// The 19 MiB argon2 works in, kept by each hashing thread: allocating it per hash left the
    /// allocator holding several copies per thread (57 MiB each, measured).
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The raw argon2 output of `password` with `salt`, in this thread's reused memory.
fn raw_hash(argon: &Argon2<'_>, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("argon2 hashing failed: {e}");
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| failed(&e))?;
    let mut out = [0u8; 32];
    raw_hash(&argon, &params, password.as_bytes(), &salt, &mut out).map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches a PHC string made by any argon2 variant and cost.
fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if raw_hash(&argon, &params, password.as_bytes(), salt, &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    bounded(move || hash_blocking(&password)).await?
}

/// Whether `password` matches `hash`; `None` verifies against the dummy hash and is always false.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, Busy> {
    bounded(move || match hash {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            let _ = verify_blocking(&password, &DUMMY_HASH);
            false
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_owasp_parameters() {
        let hash = hash("correct horse".into()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert_eq!(verify("correct horse".into(), Some(hash.clone())).await, Ok(true));
        assert_eq!(verify("correct horsE".into(), Some(hash.clone())).await, Ok(false));
        assert_eq!(verify("correct horse".into(), None).await, Ok(false), "the dummy never matches");
        assert_eq!(verify("x".into(), Some("not a phc string".into())).await, Ok(false));
        let again = super::hash("correct horse".into()).await.expect("hash");
        assert_ne!(hash, again, "salted");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_one_hash_per_core_runs_at_once() {
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let calls = (0..16).map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            tokio::spawn(bounded(move || {
                use std::sync::atomic::Ordering;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            }))
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.expect("task"), Ok(()));
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= cores, "bounded by the {cores} cores");
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_itself_verify() {
        use argon2::password_hash::PasswordHasher;
        let theirs = Argon2::default().hash_password(b"correct horse").expect("hash").to_string();
        assert_eq!(verify("correct horse".into(), Some(theirs.clone())).await, Ok(true));
        assert_eq!(verify("wrong horse".into(), Some(theirs)).await, Ok(false));
        let ours = hash("correct horse".into()).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        use argon2::password_hash::PasswordVerifier;
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok(), "the crate reads ours");
    }

    #[test]
    fn policy_bounds_length() {
        assert!(check_policy("1234567").is_err());
        assert!(check_policy("12345678").is_ok());
        assert!(check_policy("éééééééé").is_ok(), "characters, not bytes");
        assert!(check_policy(&"x".repeat(1025)).is_err());
    }
}
