// A project's media: a grid of its files with their thumbnails (refreshed while variants are
// still rendering), and uploads by drag and drop or a file picker, each with its own progress
// bar, through TUS (resumable). Uploads need one of the project's API keys: the one made in
// this page, or one pasted here.

import { api, keyOf, rememberKey } from "./api.js";
import { announce, badge, bytes, dims, errorBox, field, fill, h, onLeave, onSubmit, pager } from "./dom.js";
import { tusUpload } from "./tus.js";

const PER_PAGE = 48;
const POLL_MS = 1500;

export async function mediaTab(project) {
  const grid = h("ul", { class: "media-grid", "aria-label": "Files", "aria-live": "polite", "aria-busy": "false" });
  const pages = h("div");
  const queue = h("ul", { class: "uploads", "aria-label": "Uploads" });
  let page = 1;
  let timer = null;
  let stopped = false;
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });

  const refresh = async () => {
    clearTimeout(timer);
    const answer = await api("GET", "/files", { query: { project_id: project.id, page, per_page: PER_PAGE } });
    if (stopped) return;
    fill(grid, answer.items.length === 0 ? h("li", { class: "empty" }, "No file yet: drop some here.") : answer.items.map(tile));
    fill(pages, pager(answer, (n) => ((page = n), refresh())));
    if (answer.items.some((f) => f.status === "processing")) timer = setTimeout(() => refresh().catch(() => {}), POLL_MS);
  };

  const root = h(
    "section",
    { "aria-labelledby": "media-title" },
    h("h2", { id: "media-title" }, "Media"),
    uploadArea(project, queue, () => refresh()),
    queue,
    grid,
    pages,
  );
  await refresh();
  return root;
}

/** A file in the grid: its thumbnail once ready, its dominant colour until then. */
function tile(file) {
  const thumb = thumbnailOf(file);
  const picture = thumb
    ? h("img", { src: thumb.url, alt: file.filename, width: thumb.width, height: thumb.height, loading: "lazy" })
    : h("span", { class: "placeholder", style: file.dominant_color ? { background: file.dominant_color } : null, role: "img", "aria-label": `${file.filename}: ${file.status}` }, file.kind === "image" ? "" : extension(file.filename));
  return h(
    "li",
    { class: "tile", dataset: { fileId: file.id, status: file.status } },
    h("a", { href: `#/files/${file.id}` }, h("span", { class: "frame" }, picture), h("span", { class: "name" }, file.filename)),
    h("span", { class: "facts" }, badge(file.status), " ", file.kind === "image" ? dims(file) : bytes(file.size)),
  );
}

/** The variant to show in a grid: `thumbnail` if there is one, else the smallest that is ready. */
function thumbnailOf(file) {
  const ready = Object.entries(file.variants || {}).filter(([, v]) => v.status === "ready" && v.format !== "auto");
  if (ready.length === 0) return null;
  const named = ready.find(([name]) => name === "thumbnail");
  return (named || ready.sort(([, a], [, b]) => (a.width || 0) * (a.height || 0) - (b.width || 0) * (b.height || 0))[0])[1];
}

function extension(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toUpperCase() : "FILE";
}

function uploadArea(project, queue, refresh) {
  const area = h("div");
  const render = () => fill(area, keyOf(project.id) ? dropZone(project, queue, refresh) : keyPrompt(project, render));
  render();
  return area;
}

/** Uploading needs a key of the project: paste one, or make one for this page. */
function keyPrompt(project, done) {
  const pasted = h("input", { name: "api-key", type: "password", autocomplete: "off", placeholder: "mbk_…" });
  const problem = h("div");
  const use = h("form", { class: "row" }, field("Upload with this API key", pasted), h("button", { type: "submit" }, "Use key"));
  onSubmit(use, problem, async () => {
    const key = pasted.value.trim();
    // A cheap call that proves the key belongs to this project.
    await api("GET", "/files", { key, query: { per_page: 1 } }).then((a) => {
      if (a.items[0] && a.items[0].project_id !== project.id) throw new Error("that key belongs to another project");
    });
    rememberKey(project.id, key);
    done();
  });
  const make = h("button", { type: "button", class: "secondary" }, "Create a key for this console");
  make.addEventListener("click", async () => {
    try {
      const key = await api("POST", `/projects/${project.id}/keys`, { body: { name: "console" } });
      rememberKey(project.id, key.key);
      announce("Key created; it is listed under API keys");
      done();
    } catch (e) {
      fill(problem, errorBox(e));
    }
  });
  return h("div", { class: "card" }, h("p", {}, "Uploads are made with one of this project's API keys."), use, h("p", {}, "or ", make), problem);
}

function dropZone(project, queue, refresh) {
  const picker = h("input", { type: "file", multiple: true, id: "file-picker", class: "visually-hidden" });
  const zone = h(
    "div",
    { class: "drop", "data-testid": "drop-zone" },
    h("p", {}, "Drop images or files here, or ", h("label", { for: "file-picker", class: "link", tabindex: "0" }, "choose files"), "."),
    picker,
  );
  const start = (files) => {
    for (const file of files) uploadOne(project, file, queue, refresh);
  };
  picker.addEventListener("change", () => {
    start([...picker.files]);
    picker.value = "";
  });
  zone.querySelector("label").addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      picker.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    start([...(e.dataTransfer?.files || [])]);
  });
  return zone;
}

async function uploadOne(project, file, queue, refresh) {
  const bar = h("progress", { max: file.size || 1, value: 0, "aria-label": `Uploading ${file.name}` });
  const state = h("span", { class: "state" }, "starting");
  const item = h("li", { class: "upload", dataset: { name: file.name } }, h("span", { class: "name" }, file.name), bar, state);
  queue.prepend(item);
  try {
    const id = await tusUpload(file, {
      key: keyOf(project.id),
      onProgress: (sent, total) => {
        bar.value = sent;
        state.textContent = `${bytes(sent)} of ${bytes(total)}`;
      },
    });
    item.dataset.fileId = id;
    item.classList.add("done");
    state.textContent = "uploaded";
    announce(`${file.name} uploaded`);
    await refresh();
  } catch (e) {
    item.classList.add("failed");
    fill(state, errorBox(e));
    announce(`${file.name}: ${e.message}`, "error");
  }
}
