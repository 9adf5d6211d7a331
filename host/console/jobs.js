// Jobs: a project's (its owner's view) and, for su and admin, every project's at a glance.
// A status filter, live refresh, the error of failed jobs, and what each plugin call cost.

import { api } from "./api.js";
import { badge, bytes, errorBox, field, fill, h, onLeave, pager, table, when } from "./dom.js";

const STATUSES = ["", "pending", "processing", "completed", "failed"];
const REFRESH_MS = 2000;

/** The controls: a status filter and a live-refresh switch; `load()` runs on every change. */
function controls(load, state) {
  const status = h("select", { name: "status" }, STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s || "any")));
  status.addEventListener("change", () => {
    state.status = status.value;
    state.page = 1;
    load();
  });
  const live = h("input", { type: "checkbox", id: "live", checked: state.live });
  live.addEventListener("change", () => {
    state.live = live.checked;
    load();
  });
  return h("div", { class: "row" }, field("Status", status), h("div", { class: "field check" }, live, h("label", { for: "live" }, "Refresh live")));
}

/** Polls `load` every REFRESH_MS while live, until the route changes. */
function poller(state, load) {
  let timer = null;
  let stopped = false;
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });
  return () => {
    clearTimeout(timer);
    if (state.live && !stopped) timer = setTimeout(() => load().catch(() => {}), REFRESH_MS);
    return stopped;
  };
}

export async function projectJobs(project) {
  const state = { status: "", page: 1, live: true };
  const list = h("div", { "aria-live": "off" });
  const root = h("section", { "aria-labelledby": "jobs-title" });
  const load = async () => {
    const query = { project_id: project.id, page: state.page, per_page: 20 };
    if (state.status) query.status = state.status;
    try {
      const answer = await api("GET", "/jobs", { query });
      if (again()) return;
      fill(list, jobsTable(answer.items, `Jobs of ${project.name}`), pager(answer, (n) => ((state.page = n), load())));
    } catch (e) {
      fill(list, errorBox(e));
    }
  };
  const again = poller(state, load);
  fill(root, h("h2", { id: "jobs-title" }, "Jobs"), controls(load, state), list);
  await load();
  return root;
}

export async function adminJobsView() {
  const state = { status: "", page: 1, live: true };
  const list = h("div");
  const load = async () => {
    const query = { page: state.page, per_page: 10 };
    if (state.status) query.status = state.status;
    try {
      const answer = await api("GET", "/admin/jobs", { query });
      if (again()) return;
      fill(
        list,
        answer.projects.length === 0 ? h("p", {}, "No project yet.") : null,
        answer.projects.map((p) =>
          h(
            "section",
            { class: "card", "aria-label": `Jobs of ${p.project_name}` },
            h("h2", {}, h("a", { href: `#/projects/${p.project_id}/jobs` }, p.project_name), ` (${p.jobs.total})`),
            p.jobs.items.length ? jobsTable(p.jobs.items, `Jobs of ${p.project_name}`) : h("p", {}, "No job."),
          ),
        ),
      );
    } catch (e) {
      fill(list, errorBox(e));
    }
  };
  const again = poller(state, load);
  const root = h("section", { "aria-labelledby": "admin-jobs-title" }, h("h1", { id: "admin-jobs-title" }, "Jobs of every project"), controls(load, state), list);
  await load();
  return root;
}

function jobsTable(jobs, caption) {
  if (jobs.length === 0) return h("p", {}, "No job.");
  return h(
    "div",
    { class: "scroll" },
    table(
      caption,
      ["Kind", "Status", "Attempts", "File", "Created", "Updated", "Plugin runs", "Details"],
      jobs.map((j) => [
        j.kind,
        h("span", { dataset: { jobId: j.id, jobStatus: j.status } }, badge(j.status)),
        String(j.attempts),
        j.file_id ? h("a", { href: `#/files/${j.file_id}` }, "file") : "–",
        when(j.created_at),
        when(j.updated_at),
        runs(j.plugin_runs || []),
        details(j),
      ]),
    ),
  );
}

function runs(list) {
  if (list.length === 0) return "–";
  return h(
    "ul",
    { class: "runs" },
    list.map((r) =>
      h(
        "li",
        {},
        `${r.plugin} ${r.version}: ${r.variants} variant${r.variants === 1 ? "" : "s"} in ${r.ms} ms`,
        r.cpu_ms !== null && r.cpu_ms !== undefined ? `, CPU ${r.cpu_ms} ms` : "",
        r.peak_memory_bytes ? `, peak ${bytes(r.peak_memory_bytes)}` : ", native",
      ),
    ),
  );
}

function details(job) {
  if (job.error) return h("p", { class: "error" }, job.error);
  if (job.report) {
    const r = job.report;
    return `${r.rerendered} re-rendered, ${r.added} added, ${r.removed} removed, ${r.unchanged} unchanged`;
  }
  return "–";
}
