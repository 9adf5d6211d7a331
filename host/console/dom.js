// Building the page: elements from data (text is always set as text, never parsed as HTML, so
// a file name or an error message cannot inject markup), announcements for screen readers,
// a confirmation dialog, and formatting.

/** `h("button", {class: "x", onclick: f}, "Save")`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    // Through the CSSOM: the Content-Security-Policy refuses inline `style` attributes.
    else if (name === "style") Object.assign(el.style, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Says `message` to screen readers (and shows it in the status line). */
let quiet = null;
export function announce(message, kind = "info") {
  const status = document.getElementById("status");
  status.className = `status ${kind}`;
  status.textContent = message;
  clearTimeout(quiet);
  quiet = setTimeout(() => (status.textContent = ""), kind === "error" ? 12000 : 5000);
}

/** An error box for a failed call: the contract's message, in an alert region. */
export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

/** Runs `action` when `form` is submitted; its failure is shown in `problem`, in the
 *  contract's words. */
export function onSubmit(form, problem, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem);
    try {
      await action();
    } catch (e) {
      fill(problem, errorBox(e));
    }
  });
}

/** A secret shown once (a new key, a webhook's signing secret), with a copy button. */
export function secretCard(label, intro, secret, testId) {
  return h(
    "div",
    { class: "card secret", role: "region", "aria-label": label },
    h("p", {}, ...intro),
    h("div", { class: "row" }, h("code", { class: "key", "data-testid": testId }, secret), copyButton(secret)),
  );
}

/** A labelled form field. `input` is the control; the label points at it. */
export function field(label, input, hint) {
  input.id ||= `f-${Math.random().toString(36).slice(2, 9)}`;
  const hintEl = hint ? h("small", { id: `${input.id}-hint`, class: "hint" }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hintEl);
}

/** Asks for confirmation in a modal dialog; resolves true when confirmed. */
export function confirmDialog(title, body, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, body),
      h(
        "form",
        { method: "dialog", class: "row" },
        h("button", { value: "cancel", class: "secondary" }, "Cancel"),
        h("button", { value: "confirm", class: "danger" }, confirmLabel),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A button that copies `text` to the clipboard. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "secondary" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      announce("Copied to the clipboard");
    } catch {
      announce("The browser refused the clipboard: select the text and copy it", "error");
    }
  });
  return button;
}

export function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function dims(o) {
  return o && o.width && o.height ? `${o.width}×${o.height}` : "–";
}

/** A status badge: `ready`, `pending`, `failed`, … (text, not only colour). */
export function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

/** A table from a header row and rows of cells. */
export function table(caption, head, rows) {
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}

/** Previous/next buttons for a paginated answer; `go(page)` loads another page. */
export function pager(answer, go) {
  if (answer.total_pages <= 1) return null;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", class: "secondary", disabled: answer.page <= 1, onclick: () => go(answer.page - 1) }, "Previous"),
    h("span", {}, `Page ${answer.page} of ${answer.total_pages} (${answer.total})`),
    h(
      "button",
      { type: "button", class: "secondary", disabled: answer.page >= answer.total_pages, onclick: () => go(answer.page + 1) },
      "Next",
    ),
  );
}

/** Views register a cleanup (stop polling) with `onLeave`; it runs when the route changes. */
let leaving = [];
export function onLeave(f) {
  leaving.push(f);
}
export function leave() {
  for (const f of leaving) f();
  leaving = [];
}

/** Renders the current route again (after a change a view made). */
export function rerender() {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}
