//! Process metrics in the Prometheus text format (version 0.0.4), without a metrics crate: a few
//! counters and one latency histogram kept in memory, plus gauges read from the database at
//! scrape time (jobs by status, queue depth, variants by status), which every process of a
//! scale-out deployment shares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }

    /// The exposition lines of `name{labels,le=…}`; `labels` is empty or ends with a comma.
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", self.count);
        let bare = labels.trim_end_matches(',');
        let braces = if bare.is_empty() { String::new() } else { format!("{{{bare}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    /// (module, method, status, route template) -> requests. Every part comes from a bounded
    /// set: a made-up method is `OTHER`, an unknown path is `unmatched`.
    requests: BTreeMap<(&'static str, &'static str, u16, String), u64>,
    latency: Histogram,
    /// (plugin, result) -> plugin calls.
    plugin_runs: BTreeMap<(String, &'static str), u64>,
    /// plugin -> the wall time of its calls (names come from the registry: bounded).
    plugin_seconds: BTreeMap<String, Histogram>,
    /// (kind, outcome) -> job runs.
    job_runs: BTreeMap<(String, &'static str), u64>,
}

static METRICS: Mutex<Option<Inner>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Inner) -> R) -> R {
    let mut guard = crate::sync::lock(&METRICS);
    f(guard.get_or_insert_with(Inner::default))
}

/// The label of a request method: the standard ones by name, anything a client made up `OTHER`
/// (1,500 made-up methods used to add 1,500 series, unbounded, to an endpoint anyone may read).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|known| *known == method).unwrap_or("OTHER")
}

/// One HTTP request answered; `route` is the matched route's template (`/files/{id}`), or
/// `unmatched`.
pub fn request(module: &'static str, route: &str, method: &str, status: u16, elapsed: Duration) {
    with(|m| {
        *m.requests.entry((module, method_label(method), status, route.to_owned())).or_default() += 1;
        m.latency.observe(elapsed.as_secs_f64());
    });
}

/// One plugin call (`result`: `ok`, `failed`, or `busy`: no sandbox was free, retried later).
pub fn plugin_run(plugin: &str, result: &'static str) {
    with(|m| *m.plugin_runs.entry((plugin.to_owned(), result)).or_default() += 1);
}

/// The wall time of one plugin call.
pub fn plugin_seconds(plugin: &str, secs: f64) {
    with(|m| m.plugin_seconds.entry(plugin.to_owned()).or_default().observe(secs));
}

/// One job run by this process (`outcome`: `completed`, `failed`, `retrying`, `lost`).
pub fn job_run(kind: &str, outcome: &'static str) {
    with(|m| *m.job_runs.entry((kind.to_owned(), outcome)).or_default() += 1);
}

/// Figures read from the database at scrape time.
#[derive(Debug, Default)]
pub struct Shared {
    pub jobs_by_status: Vec<(String, i64)>,
    pub queue_depth: i64,
    pub variants_by_status: Vec<(String, i64)>,
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition text: this process' counters, then the shared gauges.
pub fn render(shared: &Shared) -> String {
    let mut out = String::new();
    with(|m| {
        out.push_str("# HELP mbk_http_requests_total HTTP requests answered by this process.\n");
        out.push_str("# TYPE mbk_http_requests_total counter\n");
        for ((module, method, status, route), n) in &m.requests {
            let _ = writeln!(
                out,
                "mbk_http_requests_total{{module=\"{module}\",method=\"{method}\",status=\"{status}\",route=\"{}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP mbk_http_request_duration_seconds Time to answer an HTTP request.\n");
        out.push_str("# TYPE mbk_http_request_duration_seconds histogram\n");
        m.latency.write(&mut out, "mbk_http_request_duration_seconds", "");
        out.push_str("# HELP mbk_plugin_runs_total Plugin calls made by this process.\n");
        out.push_str("# TYPE mbk_plugin_runs_total counter\n");
        for ((plugin, result), n) in &m.plugin_runs {
            let _ = writeln!(out, "mbk_plugin_runs_total{{plugin=\"{}\",result=\"{result}\"}} {n}", escape(plugin));
        }
        out.push_str("# HELP mbk_plugin_run_duration_seconds Wall time of the plugin calls of this process.\n");
        out.push_str("# TYPE mbk_plugin_run_duration_seconds histogram\n");
        for (plugin, histogram) in &m.plugin_seconds {
            histogram.write(&mut out, "mbk_plugin_run_duration_seconds", &format!("plugin=\"{}\",", escape(plugin)));
        }
        out.push_str("# HELP mbk_job_runs_total Jobs run by this process, by outcome.\n");
        out.push_str("# TYPE mbk_job_runs_total counter\n");
        for ((kind, outcome), n) in &m.job_runs {
            let _ = writeln!(out, "mbk_job_runs_total{{kind=\"{}\",outcome=\"{outcome}\"}} {n}", escape(kind));
        }
    });
    out.push_str("# HELP mbk_jobs Jobs in the database, by status.\n");
    out.push_str("# TYPE mbk_jobs gauge\n");
    for status in crate::db::status::JobStatus::ALL.iter().map(|s| s.as_str()) {
        let n = shared.jobs_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "mbk_jobs{{status=\"{status}\"}} {n}");
    }
    out.push_str("# HELP mbk_queue_depth Jobs pending and runnable now.\n");
    out.push_str("# TYPE mbk_queue_depth gauge\n");
    let _ = writeln!(out, "mbk_queue_depth {}", shared.queue_depth);
    out.push_str("# HELP mbk_variants Image variants in the database, by status.\n");
    out.push_str("# TYPE mbk_variants gauge\n");
    for (status, n) in &shared.variants_by_status {
        let _ = writeln!(out, "mbk_variants{{status=\"{}\"}} {n}", escape(status));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_labels_are_escaped() {
        request("Test", "/t/{id}", "GET", 200, Duration::from_millis(3));
        request("Test", "/t/{id}", "GET", 200, Duration::from_millis(70));
        request("Test", "/t/{id}", "GET", 200, Duration::from_secs(60));
        request("Test", "/t/{id}", "BREW", 200, Duration::from_millis(1));
        request("Test", "/t/{id}", "XYZZY", 200, Duration::from_millis(1));
        plugin_run("a\"b", "ok");
        let text = render(&Shared { queue_depth: 4, ..Shared::default() });
        assert!(
            text.contains("mbk_http_requests_total{module=\"Test\",method=\"GET\",status=\"200\",route=\"/t/{id}\"} 3"),
            "{text}"
        );
        assert!(
            text.contains(
                "mbk_http_requests_total{module=\"Test\",method=\"OTHER\",status=\"200\",route=\"/t/{id}\"} 2"
            ),
            "made-up methods share one series: {text}"
        );
        assert!(!text.contains("BREW") && !text.contains("XYZZY"));
        let bucket = |le: &str| {
            let prefix = format!("mbk_http_request_duration_seconds_bucket{{le=\"{le}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|n| n.parse::<u64>().ok()).expect("bucket")
        };
        // Other tests of this process may add requests; ours are at least there, in order.
        assert!(bucket("0.005") >= 1 && bucket("0.1") > bucket("0.005") && bucket("+Inf") > bucket("30"));
        assert!(text.contains("mbk_plugin_runs_total{plugin=\"a\\\"b\",result=\"ok\"} 1"), "{text}");
        assert!(text.contains("mbk_queue_depth 4\n"));
        assert!(text.contains("mbk_jobs{status=\"failed\"} 0\n"), "every status is listed");
    }
}
