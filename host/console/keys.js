// A project's API keys (a new key is shown once, with a copy button, and kept in this page's
// memory so that the media tab can upload with it) and its webhooks (the signing secret is
// shown once too).

import { api, forgetKeyIfPrefix, rememberKey } from "./api.js";
import { announce, badge, confirmDialog, errorBox, field, fill, h, onSubmit, pager, secretCard, table, when } from "./dom.js";

export async function keysTab(project) {
  const root = h("section", { "aria-labelledby": "keys-title" });
  const shown = h("div", { "aria-live": "polite" });
  const load = async (page = 1) => {
    const answer = await api("GET", `/projects/${project.id}/keys`, { query: { page, per_page: 50 } });
    fill(
      root,
      h("h2", { id: "keys-title" }, "API keys"),
      h("p", {}, "Clients upload and read this project's files with a key, in the X-API-Key header."),
      newKeyForm(project, shown, () => load(page)),
      shown,
      answer.items.length === 0
        ? h("p", {}, "No key yet.")
        : table(
            "API keys",
            ["Name", "Prefix", "State", "Created", ""],
            answer.items.map((k) => [k.name, h("code", {}, k.prefix), badge(k.enabled ? "enabled" : "disabled"), when(k.created_at), keyActions(project, k, () => load(page))]),
          ),
      pager(answer, load),
    );
  };
  await load();
  return root;
}

function newKeyForm(project, shown, reload) {
  const name = h("input", { name: "key-name", required: true, maxlength: 100, value: "console" });
  const problem = h("div");
  const form = h("form", { class: "card row", "aria-label": "New API key" }, field("Key name", name), h("button", { type: "submit" }, "Create key"), problem);
  onSubmit(form, problem, async () => {
    const key = await api("POST", `/projects/${project.id}/keys`, { body: { name: name.value.trim() } });
    rememberKey(project.id, key.key);
    await reload();
    const intro = [h("strong", {}, "Copy this key now: "), "it is shown only once. This page also keeps it in memory for uploads until you log out."];
    fill(shown, secretCard("The new key", intro, key.key, "new-key"));
    announce(`Key ${key.name} created`);
  });
  return form;
}

function keyActions(project, key, reload) {
  const toggle = h("button", { type: "button", class: "secondary" }, key.enabled ? "Disable" : "Enable");
  toggle.setAttribute("aria-label", `${key.enabled ? "Disable" : "Enable"} key ${key.name}`);
  toggle.addEventListener("click", async () => {
    try {
      await api("PATCH", `/projects/${project.id}/keys/${key.id}`, { body: { enabled: !key.enabled } });
      announce(`Key ${key.name} ${key.enabled ? "disabled" : "enabled"}`);
      await reload();
    } catch (e) {
      announce(e.message, "error");
    }
  });
  const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete key ${key.name}` }, "Delete");
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete the key ${key.name}?`, "Clients using it get 401 from now on."))) return;
    try {
      await api("DELETE", `/projects/${project.id}/keys/${key.id}`);
      forgetKeyIfPrefix(project.id, key.prefix);
      announce(`Key ${key.name} deleted`);
      await reload();
    } catch (e) {
      announce(e.message, "error");
    }
  });
  return h("div", { class: "row" }, toggle, remove);
}

const EVENTS = ["file.created", "file.ready", "file.failed", "variant.ready", "variant.failed", "file.deleted"];

export async function webhooksTab(project) {
  const root = h("section", { "aria-labelledby": "hooks-title" });
  const shown = h("div", { "aria-live": "polite" });
  const load = async () => {
    const answer = await api("GET", `/projects/${project.id}/webhooks`, { query: { per_page: 100 } });
    fill(
      root,
      h("h2", { id: "hooks-title" }, "Webhooks"),
      h("p", {}, "Signed POSTs (Standard Webhooks) to your endpoint when files and variants change."),
      newHookForm(project, shown, load),
      shown,
      answer.items.length === 0
        ? h("p", {}, "No webhook yet.")
        : table(
            "Webhooks",
            ["URL", "Events", "State", "Created", ""],
            answer.items.map((w) => [h("code", {}, w.url), w.events.join(", "), badge(w.enabled ? "enabled" : "disabled"), when(w.created_at), hookActions(project, w, load)]),
          ),
    );
  };
  await load();
  return root;
}

function newHookForm(project, shown, reload) {
  const url = h("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/hooks" });
  const boxes = EVENTS.map((e) => h("input", { type: "checkbox", name: "event", value: e, checked: true, id: `ev-${e.replace(".", "-")}` }));
  const problem = h("div");
  const form = h(
    "form",
    { class: "card", "aria-label": "New webhook" },
    field("Endpoint URL", url),
    h("fieldset", {}, h("legend", {}, "Events"), boxes.map((b) => h("span", { class: "check" }, b, h("label", { for: b.id }, b.value)))),
    h("button", { type: "submit" }, "Add webhook"),
    problem,
  );
  onSubmit(form, problem, async () => {
    const events = boxes.filter((b) => b.checked).map((b) => b.value);
    const hook = await api("POST", `/projects/${project.id}/webhooks`, { body: { url: url.value.trim(), events } });
    await reload();
    const intro = [h("strong", {}, "Signing secret, shown only once: "), "verify deliveries with it."];
    fill(shown, secretCard("The webhook's secret", intro, hook.secret, "new-secret"));
    announce("Webhook added");
  });
  return form;
}

function hookActions(project, hook, reload) {
  const deliveries = h("button", { type: "button", class: "secondary", "aria-expanded": "false" }, "Deliveries");
  const list = h("div");
  deliveries.addEventListener("click", async () => {
    const open = deliveries.getAttribute("aria-expanded") === "true";
    deliveries.setAttribute("aria-expanded", String(!open));
    if (open) return fill(list);
    try {
      const answer = await api("GET", `/projects/${project.id}/webhooks/${hook.id}/deliveries`, { query: { per_page: 20 } });
      fill(list, table("Deliveries", ["Event", "Status", "Attempts", "Answer", "When"], answer.items.map((d) => [d.event, badge(d.status), d.attempts, d.response_status ?? "–", when(d.created_at)])));
    } catch (e) {
      fill(list, errorBox(e));
    }
  });
  const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete webhook ${hook.url}` }, "Delete");
  remove.addEventListener("click", async () => {
    if (!(await confirmDialog("Delete this webhook?", hook.url))) return;
    try {
      await api("DELETE", `/projects/${project.id}/webhooks/${hook.id}`);
      announce("Webhook deleted");
      await reload();
    } catch (e) {
      announce(e.message, "error");
    }
  });
  return h("div", {}, h("div", { class: "row" }, deliveries, remove), list);
}
