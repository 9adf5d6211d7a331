//! What each plugin call costs, and the daily render budget it counts against: wall and CPU
//! milliseconds (the CPU of the thread that ran the call, read from
//! `/proc/thread-self/schedstat`: no fuel counting, which slows every guest instruction), and
//! the call's peak linear memory. Each call is a row of `plugin_runs`, tagged with the job
//! running it ([`JOB`]), so a job lists its runs.

use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, plugin_runs};

tokio::task_local! {
    /// The job whose task is rendering (set by the workers around each job's run).
    pub static JOB: Uuid;
}

/// The job this task renders for, if any (tests call the pipeline without one).
pub fn current_job() -> Option<Uuid> {
    JOB.try_with(|job| *job).ok()
}

/// The cost of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meter {
    pub ms: i64,
    pub cpu_ms: Option<i64>,
    pub peak_memory_bytes: Option<u64>,
}

/// Runs `call` (on the thread that will run the plugin) and measures it.
pub fn measured<T>(call: impl FnOnce() -> (T, Option<u64>)) -> (T, Meter) {
    let (wall, cpu) = (Instant::now(), thread_cpu_ns());
    let (out, peak_memory_bytes) = call();
    let cpu_ms = cpu.zip(thread_cpu_ns()).map(|(before, after)| (after.saturating_sub(before) / 1_000_000) as i64);
    (out, Meter { ms: wall.elapsed().as_millis() as i64, cpu_ms, peak_memory_bytes })
}

/// Nanoseconds this thread has run on a CPU (Linux), or `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Midnight (UTC) of today: when the daily budget starts again.
pub fn today() -> DateTime<Utc> {
    Utc::now().date_naive().and_hms_opt(0, 0, 0).map_or_else(Utc::now, |t| t.and_utc())
}

/// Why `project`'s renders stop now, when its budget of `seconds` a day is used up.
pub async fn over_budget(db: &Db, project: Uuid, seconds: Option<i64>) -> Result<Option<String>, sqlx::Error> {
    let Some(seconds) = seconds else { return Ok(None) };
    let used = plugin_runs::ms_since(db, project, today()).await?;
    Ok((used >= seconds.saturating_mul(1000)).then(|| {
        format!(
            "budget exceeded: the project's {seconds} s of rendering a day are used up ({:.1} s today); it resets at 00:00 UTC",
            used as f64 / 1000.0
        )
    }))
}
