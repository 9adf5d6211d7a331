// Projects: the list with a create form, and a project's page with its tabs (media, settings,
// keys, webhooks, jobs), rename and delete.

import { api } from "./api.js";
import { announce, confirmDialog, field, fill, h, onSubmit, pager, rerender, table, when } from "./dom.js";
import { projectJobs } from "./jobs.js";
import { keysTab, webhooksTab } from "./keys.js";
import { mediaTab } from "./media.js";
import { settingsTab } from "./settings.js";

export async function projectsView(page = 1) {
  const answer = await api("GET", "/projects", { query: { page, per_page: 50 } });
  const root = h("section", { "aria-labelledby": "projects-title" });
  const render = (a) =>
    fill(
      root,
      h("h1", { id: "projects-title" }, "Projects"),
      createForm(),
      a.items.length === 0
        ? h("p", {}, "No project yet: create one above.")
        : table(
            "Your projects",
            ["Name", "Visibility", "Variants", "Created"],
            a.items.map((p) => [
              h("a", { href: `#/projects/${p.id}` }, p.name),
              p.settings.visibility || "public",
              p.settings.variants.map((v) => v.name).join(", "),
              when(p.created_at),
            ]),
          ),
      pager(a, async (n) => render(await api("GET", "/projects", { query: { page: n, per_page: 50 } }))),
    );
  render(answer);
  return root;
}

function createForm() {
  const name = h("input", { name: "name", required: true, maxlength: 100 });
  const problem = h("div");
  const form = h(
    "form",
    { class: "card row", "aria-label": "New project" },
    field("New project name", name),
    h("button", { type: "submit" }, "Create project"),
    problem,
  );
  onSubmit(form, problem, async () => {
    const project = await api("POST", "/projects", { body: { name: name.value.trim() } });
    announce(`Project ${project.name} created`);
    location.hash = `#/projects/${project.id}/keys`;
  });
  return form;
}

const TABS = [
  ["media", "Media"],
  ["settings", "Settings"],
  ["keys", "API keys"],
  ["webhooks", "Webhooks"],
  ["jobs", "Jobs"],
];

export async function projectView(id, tab) {
  const project = await api("GET", `/projects/${id}`);
  const body = await { media: mediaTab, settings: settingsTab, keys: keysTab, webhooks: webhooksTab, jobs: projectJobs }[
    tab
  ](project);
  return h(
    "section",
    { "aria-labelledby": "project-title" },
    h("p", { class: "crumbs" }, h("a", { href: "#/projects" }, "Projects"), " / "),
    h("div", { class: "row spread" }, h("h1", { id: "project-title" }, project.name), projectActions(project)),
    h(
      "nav",
      { class: "tabs", "aria-label": "Project" },
      TABS.map(([t, label]) =>
        h("a", { href: `#/projects/${id}/${t}`, "aria-current": t === tab ? "page" : false }, label),
      ),
    ),
    body,
  );
}

function projectActions(project) {
  const rename = h("button", { type: "button", class: "secondary" }, "Rename");
  rename.addEventListener("click", () => {
    const name = h("input", { name: "name", value: project.name, required: true, maxlength: 100 });
    const problem = h("div");
    const form = h(
      "form",
      { class: "row", "aria-label": "Rename project" },
      field("Project name", name),
      h("button", { type: "submit" }, "Save name"),
      problem,
    );
    onSubmit(form, problem, async () => {
      await api("PUT", `/projects/${project.id}`, { body: { name: name.value.trim() } });
      announce("Renamed");
      rerender();
    });
    rename.replaceWith(form);
    name.focus();
  });
  const remove = h("button", { type: "button", class: "danger" }, "Delete project");
  remove.addEventListener("click", () => deleteProject(project));
  return h("div", { class: "row" }, rename, remove);
}

async function deleteProject(project) {
  const permanent = h("input", { type: "checkbox", id: "permanent" });
  const ok = await confirmDialog(
    `Delete ${project.name}?`,
    h(
      "span",
      {},
      "A deleted project disappears and its keys stop working. ",
      h("label", { for: "permanent" }, permanent, " Also delete every file and variant from storage, for good"),
    ),
  );
  if (!ok) return;
  try {
    await api("DELETE", `/projects/${project.id}`, { query: permanent.checked ? { permanent: "true" } : undefined });
    announce(`Project ${project.name} deleted`);
    location.hash = "#/projects";
  } catch (e) {
    announce(e.message, "error");
  }
}
