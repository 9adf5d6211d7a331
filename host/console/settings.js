// A project's settings as a form: variants (one row each), quotas and delivery. The form checks
// what the API checks before sending (so mistakes are shown where they are), and shows the
// API's own 400 next to the field it names when the server knows better.

import { api } from "./api.js";
import { announce, errorBox, field, fill, h } from "./dom.js";

const NAME = /^[a-z0-9_-]{1,32}$/;
const FITS = ["cover", "contain", "stretch"];
const FORMATS = ["webp", "avif", "jpeg", "png", "auto"];
const GRAVITIES = ["centre", "attention", "focal"];

export async function settingsTab(project) {
  const plugins = await api("GET", "/plugins").catch(() => []);
  const s = project.settings;
  const rows = h("tbody");
  const addRow = (v) => rows.append(variantRow(v, plugins));
  s.variants.forEach(addRow);

  const q = s.quotas || {};
  const number = (name, value, attrs = {}) =>
    h("input", { name, type: "number", inputmode: "numeric", value: value ?? "", min: 1, ...attrs });
  const maxFile = number("max_file_bytes", q.max_file_bytes);
  const maxTotal = number("max_total_bytes", q.max_total_bytes);
  const maxFiles = number("max_files", q.max_files);
  const maxRender = number("max_render_seconds_per_day", q.max_render_seconds_per_day);
  const visibility = h(
    "select",
    { name: "visibility" },
    ["public", "private"].map((v) => h("option", { value: v, selected: (s.visibility || "public") === v }, v)),
  );
  const ttl = number("url_ttl_seconds", s.url_ttl_seconds ?? 3600, { min: 60, max: 604800 });
  const cors = h("textarea", { name: "cors_origins", rows: 2 }, (s.cors_origins || []).join("\n"));
  const rerender = h("input", { type: "checkbox", name: "rerender_on_upgrade", checked: !!s.rerender_on_upgrade });
  const keepGps = h("input", { type: "checkbox", name: "keep_gps", checked: !!s.keep_gps });
  const problem = h("div", { "aria-live": "assertive" });
  const syncNote = h("div", { "aria-live": "polite" });

  const form = h(
    "form",
    { class: "settings", novalidate: true, "aria-label": "Project settings" },
    h("h2", {}, "Variants"),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "variants" },
        h("caption", { class: "visually-hidden" }, "Variants rendered for every image"),
        h(
          "thead",
          {},
          h("tr", {}, ["Name", "Width", "Height", "Fit", "Format", "Quality", "Gravity", "Plugin", "Params", ""].map((c) =>
            h("th", { scope: "col" }, c),
          )),
        ),
        rows,
      ),
    ),
    h("button", { type: "button", class: "secondary", onclick: () => addRow({ name: "", fit: "contain", format: "webp", quality: 80 }) }, "Add a variant"),
    h("h2", {}, "Quotas"),
    h(
      "div",
      { class: "grid-form" },
      field("Largest file (bytes)", maxFile),
      field("All files together (bytes)", maxTotal, "Empty: no limit"),
      field("Number of files", maxFiles, "Empty: no limit"),
      field("Render seconds per day", maxRender, "Empty: no limit"),
    ),
    h("h2", {}, "Delivery"),
    h(
      "div",
      { class: "grid-form" },
      field("Visibility", visibility, "Private: every URL is signed and expires"),
      field("Signed URLs last (seconds)", ttl, "60 to 604800"),
      field("CORS origins", cors, "One https://host[:port] per line"),
      h("div", { class: "field check" }, rerender, h("label", { for: (rerender.id = "rerender") }, "Re-render when a plugin is upgraded")),
      h("div", { class: "field check" }, keepGps, h("label", { for: (keepGps.id = "keep-gps") }, "Keep GPS positions in metadata")),
    ),
    problem,
    h("div", { class: "row" }, h("button", { type: "submit" }, "Save settings"), syncButton(project, syncNote)),
    syncNote,
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem);
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    const numberOrNull = (input) => (input.value.trim() === "" ? null : Number(input.value));
    const variants = [...rows.children].map(readRow);
    const settings = {
      ...s,
      variants,
      quotas: {
        ...q,
        max_file_bytes: numberOrNull(maxFile) ?? q.max_file_bytes,
        max_total_bytes: numberOrNull(maxTotal),
        max_files: numberOrNull(maxFiles),
        max_render_seconds_per_day: numberOrNull(maxRender),
      },
      visibility: visibility.value,
      url_ttl_seconds: numberOrNull(ttl) ?? 3600,
      cors_origins: cors.value.split(/\s+/).filter(Boolean),
      rerender_on_upgrade: rerender.checked,
      keep_gps: keepGps.checked,
    };
    const mistake = check(settings, rows);
    if (mistake) {
      mistake.input?.setAttribute("aria-invalid", "true");
      mistake.input?.focus();
      fill(problem, h("p", { class: "error", role: "alert" }, mistake.message));
      return;
    }
    try {
      const saved = await api("PUT", `/projects/${project.id}`, { body: { settings } });
      project.settings = saved.settings;
      announce("Settings saved. Sync the variants to render existing images again.");
      fill(syncNote, h("p", {}, "Saved. Existing images keep their old variants until you sync."));
    } catch (e) {
      fill(problem, errorBox(e));
    }
  });
  return form;
}

function syncButton(project, note) {
  const button = h("button", { type: "button", class: "secondary" }, "Sync variants");
  button.addEventListener("click", async () => {
    try {
      const { job_id } = await api("POST", `/projects/${project.id}/sync-variants`);
      fill(note, h("p", {}, "Sync queued as job ", h("code", {}, job_id), ". ", h("a", { href: `#/projects/${project.id}/jobs` }, "Watch it in Jobs")));
      announce("Sync queued");
    } catch (e) {
      fill(note, errorBox(e));
    }
  });
  return button;
}

function variantRow(v, plugins) {
  const cell = (label, input) => {
    input.setAttribute("aria-label", label);
    return h("td", {}, input);
  };
  const choice = (name, values, current) =>
    h("select", { name }, values.map((x) => h("option", { value: x, selected: x === current }, x)));
  const num = (name, value, min, max) => h("input", { name, type: "number", min, max, value: value ?? "", inputmode: "numeric" });
  const listId = "plugin-names";
  if (!document.getElementById(listId)) {
    document.body.append(h("datalist", { id: listId }, [...new Set(plugins.map((p) => p.name))].map((n) => h("option", { value: n }))));
  }
  const params = Object.entries(v.params || {}).map(([k, x]) => `${k}=${x}`).join("\n");
  const row = h(
    "tr",
    {},
    cell("Variant name", h("input", { name: "name", value: v.name, required: true, pattern: "[a-z0-9_\\-]{1,32}", size: 10 })),
    cell("Width", num("width", v.width, 1, 8192)),
    cell("Height", num("height", v.height, 1, 8192)),
    cell("Fit", choice("fit", FITS, v.fit)),
    cell("Format", choice("format", FORMATS, v.format)),
    cell("Quality", num("quality", v.quality ?? 80, 1, 100)),
    cell("Gravity", choice("gravity", GRAVITIES, v.gravity || "centre")),
    cell("Plugin", h("input", { name: "plugin", value: v.plugin || "mbk-standard", list: listId, size: 12 })),
    cell("Params (key=value per line)", h("textarea", { name: "params", rows: 1 }, params)),
    h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `Remove variant ${v.name}`, onclick: () => row.remove() }, "Remove")),
  );
  return row;
}

function readRow(row) {
  const get = (name) => row.querySelector(`[name=${name}]`).value.trim();
  const int = (name) => (get(name) === "" ? null : Number(get(name)));
  const params = Object.fromEntries(
    get("params")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => [l.split("=")[0].trim(), l.split("=").slice(1).join("=").trim()]),
  );
  const variant = {
    name: get("name"),
    width: int("width"),
    height: int("height"),
    fit: get("fit"),
    format: get("format"),
    quality: int("quality"),
    gravity: get("gravity"),
    plugin: get("plugin") || "mbk-standard",
  };
  if (Object.keys(params).length) variant.params = params;
  return variant;
}

/** The API's rules, so that a mistake is shown at its field; null when the settings are fine. */
function check(settings, rows) {
  const seen = new Set();
  for (const [i, v] of settings.variants.entries()) {
    const input = (name) => rows.children[i].querySelector(`[name=${name}]`);
    const where = `variant ${i + 1}${v.name ? ` (${v.name})` : ""}`;
    if (!NAME.test(v.name)) return { input: input("name"), message: `${where}: the name is 1 to 32 of a-z, 0-9, _ and -` };
    if (seen.has(v.name)) return { input: input("name"), message: `${where}: another variant has this name` };
    seen.add(v.name);
    for (const side of ["width", "height"]) {
      const n = v[side];
      if (n !== null && !(Number.isInteger(n) && n >= 1 && n <= 8192))
        return { input: input(side), message: `${where}: ${side} is 1 to 8192, or empty` };
    }
    if (v.width === null && v.height === null) return { input: input("width"), message: `${where}: give a width, a height or both` };
    if (!(Number.isInteger(v.quality) && v.quality >= 1 && v.quality <= 100))
      return { input: input("quality"), message: `${where}: quality is 1 to 100` };
  }
  const ttl = settings.url_ttl_seconds;
  if (!(Number.isInteger(ttl) && ttl >= 60 && ttl <= 604800)) return { message: "Signed URLs last 60 to 604800 seconds" };
  const bad = settings.cors_origins.find((o) => !/^https?:\/\/[^/\s]+$/.test(o));
  if (bad) return { message: `CORS origin ${bad}: write it as https://host[:port]` };
  return null;
}
