//! What renders cost, as a tenant and an operator see it: every job that rendered lists its
//! `plugin_runs` (plugin, version, digest, variants, wall and CPU ms, peak memory) in `GET /jobs`
//! and `GET /admin/jobs`; `/metrics` has a histogram per plugin; a project's
//! `max_render_seconds_per_day` stops renders with `budget exceeded` once the day's time is
//! used, until the next day. On both databases.

use mbk_host::db::users::Role;
use serde_json::{Value, json};

use crate::helpers::{DbKind, StoreKind, Tenant, TestApp, db_tests, drain, fixture};

db_tests!(jobs_show_what_their_plugin_calls_cost, the_daily_render_budget_stops_renders_until_the_next_day);

async fn upload(app: &TestApp, t: &Tenant) -> Value {
    let file: Value =
        app.upload("/upload/image", &t.key, "p.jpg", fixture("photo.jpg")).await.json().await.expect("json");
    drain(app).await;
    file
}

async fn job(app: &TestApp, t: &Tenant, id: &Value) -> Value {
    let jobs: Value = app.get_with_key("/jobs?per_page=100", &t.key).await.json().await.expect("json");
    jobs["items"].as_array().expect("items").iter().find(|j| &j["id"] == id).cloned().expect("listed")
}

async fn jobs_show_what_their_plugin_calls_cost(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(Value::Null).await;
    let file = upload(&app, &t).await;
    let j = job(&app, &t, &file["job_id"]).await;
    let runs = j["plugin_runs"].as_array().expect("plugin_runs");
    assert_eq!(runs.len(), 1, "one call for both default variants: {j}");
    let run = &runs[0];
    assert_eq!((&run["plugin"], &run["variants"]), (&json!("mbk-standard"), &json!(2)), "{run}");
    let builtin: Value = app.get_as("/plugins", Some(&t.token)).await.json().await.expect("json");
    assert_eq!(run["version"], builtin[0]["version"]);
    assert!(run["ms"].as_i64().is_some_and(|ms| ms > 0), "{run}");
    assert!(run["cpu_ms"].as_i64().is_some_and(|ms| ms > 0), "{run}");
    assert!(run["peak_memory_bytes"].as_i64().is_some_and(|b| b > 1 << 20), "a decoded photo needs memory: {run}");
    assert_eq!(run["fuel"], Value::Null);

    let (_, su) = app.user_with_token("root", Role::Su).await;
    let admin: Value = app.get_as("/admin/jobs", Some(&su)).await.json().await.expect("json");
    let listed =
        admin["projects"].as_array().expect("projects").iter().find(|p| p["project_id"] == t.project_id.as_str());
    let listed = listed.expect("the project")["jobs"]["items"][0].clone();
    assert_eq!(listed["plugin_runs"], j["plugin_runs"]);

    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("mbk_plugin_run_duration_seconds_bucket{plugin=\"mbk-standard\",le=\"0.005\"}"),
        "{metrics}"
    );
}

/// Runs `sql` with the project's id as `$1` (tests only: using up and moving the day's time).
async fn exec(app: &TestApp, sql: &'static str, project: &str) {
    let id = uuid::Uuid::parse_str(project).expect("uuid");
    mbk_host::dispatch!(&app.state.db, |pool| sqlx::query(sql).bind(id).execute(pool).await.map(|_| ())).expect("sql");
}

async fn the_daily_render_budget_stops_renders_until_the_next_day(db: DbKind) {
    let app = TestApp::spawn(db, StoreKind::Filesystem).await;
    let t = app.project_with_key(json!({"quotas": {"max_render_seconds_per_day": 1}})).await;
    let first = upload(&app, &t).await;
    assert_eq!(job(&app, &t, &first["job_id"]).await["status"], "completed");

    // Today's renders have used the second (the recorded time, made longer).
    exec(&app, "UPDATE plugin_runs SET ms = 1000 WHERE project_id = $1", &t.project_id).await;
    let second = upload(&app, &t).await;
    let j = job(&app, &t, &second["job_id"]).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(j["error"].as_str().is_some_and(|e| e.contains("budget exceeded")), "{j}");
    assert!(j.get("plugin_runs").is_none(), "nothing ran: {j}");
    let path = format!("/files/{}", second["id"].as_str().expect("id"));
    let f: Value = app.get_with_key(&path, &t.key).await.json().await.expect("json");
    assert_eq!(f["variants"]["thumbnail"]["status"], "failed", "{f}");
    assert!(f["variants"]["thumbnail"]["error"].as_str().is_some_and(|e| e.contains("budget exceeded")), "{f}");

    // The next day (those runs moved to yesterday) renders again.
    let yesterday = match db {
        DbKind::Sqlite => "UPDATE plugin_runs SET created_at = '2000-01-01T00:00:00+00:00' WHERE project_id = $1",
        DbKind::Postgres => "UPDATE plugin_runs SET created_at = now() - interval '1 day' WHERE project_id = $1",
    };
    exec(&app, yesterday, &t.project_id).await;
    let third = upload(&app, &t).await;
    assert_eq!(job(&app, &t, &third["job_id"]).await["status"], "completed");
    // And a sync renders what the budget failed.
    let sync = format!("/projects/{}/sync-variants", t.project_id);
    let answer: Value = app.post_json(&sync, Some(&t.token), &json!({})).await.json().await.expect("json");
    drain(&app).await;
    let synced = job(&app, &t, &answer["job_id"]).await;
    assert_eq!(synced["report"]["rerendered"], 2, "the second upload's two variants: {synced}");
    let f: Value = app.get_with_key(&path, &t.key).await.json().await.expect("json");
    assert_eq!(f["variants"]["thumbnail"]["status"], "ready", "{f}");

    // The cleanup purges runs older than its purge period (zero here): every one of them.
    let (_, later, _stop) = app.sibling(|c| c.jobs.purge_after = std::time::Duration::ZERO).await;
    let report = mbk_host::jobs::cleanup::run(&later).await.expect("cleanup");
    assert!(report.plugin_runs_purged >= 3, "{report:?}");
    assert!(job(&app, &t, &third["job_id"]).await.get("plugin_runs").is_none(), "purged");
}
