// A file's page: the original and every variant side by side (size, dimensions, format, the
// plugin and version that made it), its metadata and placeholders, and delete. Refreshed while
// variants are still rendering.

import { api } from "./api.js";
import { announce, badge, bytes, confirmDialog, dims, fill, h, onLeave, table, when } from "./dom.js";
import { blurhashCanvas } from "./placeholder.js";

const POLL_MS = 1500;

export async function fileView(id) {
  const root = h("section", { "aria-labelledby": "file-title" });
  let timer = null;
  onLeave(() => clearTimeout(timer));
  const load = async () => {
    const file = await api("GET", `/files/${id}`);
    fill(root, ...page(file));
    if (file.status === "processing") timer = setTimeout(() => load().catch(() => {}), POLL_MS);
  };
  await load();
  return root;
}

function page(file) {
  const back = `#/projects/${file.project_id}/media`;
  const remove = h("button", { type: "button", class: "danger" }, "Delete file");
  remove.addEventListener("click", async () => {
    const ok = await confirmDialog(`Delete ${file.filename}?`, "The original and every variant are deleted from storage.");
    if (!ok) return;
    try {
      await api("DELETE", `/files/${file.id}`);
      announce(`${file.filename} deleted`);
      location.hash = back;
    } catch (e) {
      announce(e.message, "error");
    }
  });
  return [
    h("p", { class: "crumbs" }, h("a", { href: back }, "Media"), " / "),
    h("div", { class: "row spread" }, h("h1", { id: "file-title" }, file.filename), remove),
    h(
      "dl",
      { class: "facts-list" },
      fact("Status", badge(file.status)),
      fact("Type", `${file.kind}, ${file.mime_type}`),
      fact("Size", bytes(file.size)),
      file.kind === "image" ? fact("Dimensions", dims(file)) : null,
      file.animated ? fact("Frames", String(file.frames)) : null,
      fact("Uploaded", when(file.created_at)),
      fact("SHA-256", h("code", { class: "hash" }, file.sha256)),
      fact("Original", h("a", { href: file.url, rel: "noreferrer" }, "Open the original")),
    ),
    file.kind === "image" ? variantsSection(file) : null,
    file.kind === "image" ? placeholders(file) : null,
    file.metadata ? metadataSection(file.metadata) : null,
  ];
}

const fact = (term, value) => [h("dt", {}, term), h("dd", {}, value)];

function variantsSection(file) {
  const entries = Object.entries(file.variants || {});
  return h(
    "section",
    { "aria-labelledby": "variants-title" },
    h("h2", { id: "variants-title" }, `Variants (${entries.length})`),
    h("ul", { class: "variants-grid" }, entries.map(([name, v]) => variantCard(file, name, v))),
  );
}

function variantCard(file, name, v) {
  const image =
    v.status === "ready" && v.format !== "auto"
      ? h("img", { src: v.url, alt: `${file.filename}, variant ${name}`, width: v.width, height: v.height })
      : v.status === "ready" && v.formats
        ? h("img", { src: v.url, alt: `${file.filename}, variant ${name} in the format this browser takes best` })
        : h("span", { class: "placeholder", role: "img", "aria-label": `${name}: ${v.status}` }, v.status);
  const made = v.plugin ? `${v.plugin.name} ${v.plugin.version}` : "–";
  const rows = [
    ["Status", badge(v.status)],
    ["Format", v.format],
    ["Dimensions", dims(v)],
    ["Size", bytes(v.size)],
    ["Made by", made],
  ];
  if (v.formats) rows.push(["Formats", Object.entries(v.formats).map(([f, s]) => `${f} ${bytes(s.size)}`).join(", ")]);
  return h(
    "li",
    { class: "variant", dataset: { variant: name, status: v.status } },
    h("h3", {}, name),
    h("span", { class: "frame" }, image),
    h("dl", { class: "facts-list" }, rows.map(([t, d]) => fact(t, d))),
    v.error ? h("p", { class: "error" }, v.error) : null,
    v.status === "ready" ? h("a", { href: v.url, rel: "noreferrer" }, `Open ${name}`) : null,
  );
}

function placeholders(file) {
  const canvas = file.blurhash ? blurhashCanvas(file.blurhash, file.width || 1, file.height || 1, "BlurHash placeholder") : null;
  return h(
    "section",
    { "aria-labelledby": "placeholders-title" },
    h("h2", { id: "placeholders-title" }, "Placeholders"),
    h(
      "div",
      { class: "row" },
      canvas ? h("figure", {}, canvas, h("figcaption", {}, "BlurHash")) : null,
      file.dominant_color
        ? h("figure", {}, h("span", { class: "swatch", style: { background: file.dominant_color }, role: "img", "aria-label": `Dominant colour ${file.dominant_color}` }), h("figcaption", {}, `Dominant colour ${file.dominant_color}`))
        : null,
    ),
    h("dl", { class: "facts-list" }, file.blurhash ? fact("BlurHash", h("code", {}, file.blurhash)) : null, file.thumbhash ? fact("ThumbHash", h("code", {}, file.thumbhash)) : null),
  );
}

const METADATA = [
  ["camera_make", "Camera make"],
  ["camera_model", "Camera model"],
  ["lens", "Lens"],
  ["taken_at", "Taken"],
  ["exposure_time", "Exposure"],
  ["f_number", "Aperture (f)"],
  ["iso", "ISO"],
  ["focal_length_mm", "Focal length (mm)"],
  ["color_profile", "Colour profile"],
];

function metadataSection(metadata) {
  const rows = METADATA.filter(([k]) => metadata[k] !== undefined && metadata[k] !== null).map(([k, label]) => [label, String(metadata[k])]);
  if (metadata.gps) rows.push(["GPS", JSON.stringify(metadata.gps)]);
  if (rows.length === 0) return null;
  return h("section", { "aria-labelledby": "metadata-title" }, h("h2", { id: "metadata-title" }, "Metadata"), table("Metadata", ["Field", "Value"], rows));
}
