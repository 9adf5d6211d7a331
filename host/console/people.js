// Plugins (su and admin: register a `.wasm` component, delete; everyone sees their declared
// params) and users (su: list, create, delete).

import { api, me } from "./api.js";
import { announce, badge, bytes, confirmDialog, field, fill, h, onSubmit, pager, table, when } from "./dom.js";

export async function pluginsView() {
  const root = h("section", { "aria-labelledby": "plugins-title" });
  const load = async () => {
    const plugins = await api("GET", "/plugins");
    fill(
      root,
      h("h1", { id: "plugins-title" }, "Plugins"),
      registerForm(load),
      h("ul", { class: "cards" }, plugins.map((p) => pluginCard(p, load))),
    );
  };
  await load();
  return root;
}

function pluginCard(p, reload) {
  const user = me();
  const mayDelete = !p.builtin && (user.role === "su" || p.owner_id === user.id);
  const remove = mayDelete ? h("button", { type: "button", class: "danger", "aria-label": `Delete plugin ${p.name} ${p.version}` }, "Delete") : null;
  remove?.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete ${p.name} ${p.version}?`, "Projects naming it must be changed first."))) return;
    try {
      await api("DELETE", `/plugins/${p.id}`);
      announce(`${p.name} ${p.version} deleted`);
      await reload();
    } catch (e) {
      announce(e.message, "error");
    }
  });
  const params = p.params || [];
  return h(
    "li",
    { class: "card", dataset: { plugin: p.name } },
    h("div", { class: "row spread" }, h("h2", {}, `${p.name} ${p.version}`), remove),
    h("p", {}, p.builtin ? badge("builtin") : null, " ", badge(p.visibility), ` world ${p.world}, ${bytes(p.size)}, added ${when(p.created_at)}`),
    h("p", {}, "SHA-256 ", h("code", { class: "hash" }, p.sha256)),
    params.length
      ? table(
          `Params of ${p.name}`,
          ["Param", "Type", "Default", "Range or values", "What it does"],
          params.map((x) => [h("code", {}, x.name), x.type, x.default ?? "–", x.values ? x.values.join(", ") : x.min !== undefined && x.min !== null ? `${x.min} to ${x.max}` : "–", x.description || ""]),
        )
      : h("p", {}, "No declared params."),
  );
}

function registerForm(reload) {
  const role = me().role;
  if (role !== "su" && role !== "admin") return null;
  const file = h("input", { type: "file", name: "file", accept: ".wasm,application/wasm", required: true });
  const name = h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9_\\-]*" });
  const version = h("input", { name: "version", required: true, placeholder: "1.0.0" });
  const problem = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "card", "aria-label": "Register a plugin" },
    h("h2", {}, "Register a plugin"),
    h("div", { class: "grid-form" }, field("Component (.wasm)", file), field("Name", name), field("Version (semver)", version)),
    h("button", { type: "submit" }, "Register"),
    problem,
  );
  onSubmit(form, problem, async () => {
    const body = new FormData();
    body.append("name", name.value.trim());
    body.append("version", version.value.trim());
    body.append("file", file.files[0]);
    const p = await api("POST", "/plugins", { form: body });
    announce(`${p.name} ${p.version} registered`);
    await reload();
  });
  return form;
}

export async function usersView(page = 1) {
  const root = h("section", { "aria-labelledby": "users-title" });
  const load = async (n = page) => {
    const answer = await api("GET", "/users", { query: { page: n, per_page: 50 } });
    fill(
      root,
      h("h1", { id: "users-title" }, "Users"),
      newUserForm(() => load(n)),
      table(
        "Users",
        ["Username", "Role", "Created", ""],
        answer.items.map((u) => [u.username, badge(u.role), when(u.created_at), u.role === "su" ? "–" : deleteUser(u, () => load(n))]),
      ),
      pager(answer, load),
    );
  };
  await load();
  return root;
}

function newUserForm(reload) {
  const username = h("input", { name: "new-username", required: true, autocomplete: "off" });
  const password = h("input", { name: "new-password", type: "password", required: true, minlength: 8, autocomplete: "new-password" });
  const role = h("select", { name: "role" }, h("option", { value: "user" }, "user"), h("option", { value: "admin" }, "admin"));
  const problem = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    // The API's own answer (which names the rule) rather than the browser's bubble.
    { class: "card", "aria-label": "New user", novalidate: true },
    h("div", { class: "grid-form" }, field("Username", username), field("Password", password, "At least 8 characters"), field("Role", role)),
    h("button", { type: "submit" }, "Create user"),
    problem,
  );
  onSubmit(form, problem, async () => {
    const u = await api("POST", "/users", { body: { username: username.value.trim(), password: password.value, role: role.value } });
    announce(`User ${u.username} created`);
    await reload();
  });
  return form;
}

function deleteUser(user, reload) {
  const button = h("button", { type: "button", class: "danger", "aria-label": `Delete user ${user.username}` }, "Delete");
  button.addEventListener("click", async () => {
    if (!(await confirmDialog(`Delete ${user.username}?`, "They can no longer log in."))) return;
    try {
      await api("DELETE", `/users/${user.id}`);
      announce(`User ${user.username} deleted`);
      await reload();
    } catch (e) {
      announce(e.message, "error");
    }
  });
  return button;
}
