// The console's shell: the hash router (#/projects, #/projects/{id}/media, #/files/{id}, …),
// the navigation for the user's role, and the login form.

import { login, logout, loggedIn, me, whenSessionLost } from "./api.js";
import { announce, errorBox, field, fill, h, leave } from "./dom.js";
import { fileView } from "./file.js";
import { adminJobsView } from "./jobs.js";
import { pluginsView, usersView } from "./people.js";
import { projectView, projectsView } from "./projects.js";

const routes = [
  [/^#\/projects\/([0-9a-f-]{36})(?:\/(media|settings|keys|webhooks|jobs))?$/, (m) => projectView(m[1], m[2] || "media")],
  [/^#\/files\/([0-9a-f-]{36})$/, (m) => fileView(m[1])],
  [/^#\/jobs$/, () => adminJobsView()],
  [/^#\/plugins$/, () => pluginsView()],
  [/^#\/users$/, () => usersView()],
  [/^#\/projects$/, () => projectsView()],
];

async function route() {
  leave();
  const main = document.getElementById("main");
  renderNav();
  if (!loggedIn()) {
    fill(main, loginForm());
    return;
  }
  const hash = location.hash || "#/projects";
  const match = routes.map(([re, view]) => [hash.match(re), view]).find(([m]) => m);
  if (!match) {
    location.hash = "#/projects";
    return;
  }
  fill(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const view = await match[1](match[0]);
    fill(main, view);
  } catch (e) {
    fill(main, h("h1", {}, "Something went wrong"), errorBox(e));
  }
  main.querySelector("h1")?.setAttribute("tabindex", "-1");
  main.querySelector("h1")?.focus({ preventScroll: true });
}

function renderNav() {
  const nav = document.getElementById("nav");
  if (!loggedIn()) {
    fill(nav);
    return;
  }
  const user = me();
  const link = (href, text) =>
    h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : false }, text);
  const staff = user.role === "su" || user.role === "admin";
  fill(
    nav,
    link("#/projects", "Projects"),
    staff ? link("#/jobs", "Jobs") : null,
    staff ? link("#/plugins", "Plugins") : null,
    user.role === "su" ? link("#/users", "Users") : null,
    h("span", { class: "who" }, `${user.username} (${user.role})`),
    h("button", { type: "button", class: "secondary", onclick: signOut }, "Log out"),
  );
}

async function signOut() {
  await logout();
  announce("Logged out");
  location.hash = "#/projects";
  route();
}

function loginForm() {
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const problem = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    field("Username", username),
    field("Password", password),
    problem,
    h("button", { type: "submit" }, "Log in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(problem);
    try {
      const user = await login(username.value, password.value);
      announce(`Logged in as ${user.username}`);
      route();
    } catch (e) {
      fill(problem, errorBox(e));
      password.select();
    }
  });
  return form;
}

whenSessionLost(() => {
  announce("Your session has ended: log in again", "error");
  route();
});
window.addEventListener("hashchange", route);
route();
