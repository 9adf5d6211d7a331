// A person using the console, in Debian's headless Chromium driven by playwright-core: log in,
// create a project, make a key, drag and drop two photos, see their thumbnails, open one and see
// every variant, change a variant's size and sync, see the job complete, delete a file, log out.
// axe-core checks every page for serious accessibility violations; screenshots are kept.
//
// Environment: MBK_CONSOLE_URL (the host), MBK_CONSOLE_USER / MBK_CONSOLE_PASSWORD (a su),
// MBK_CONSOLE_PHOTOS (two paths, ":"-separated), MBK_CONSOLE_SHOTS (screenshot folder),
// MBK_CONSOLE_PRIVATE (1: make the project private before uploading), MBK_CONSOLE_PLUGIN (a
// plugin component to register),
// MBK_TEST_NODE_MODULES (where scripts/test installed the npm packages).
// Prints one JSON line at the end: {"project_id", "kept_file_id", "deleted_file_id", "checked"}.

"use strict";
const fs = require("fs");
const path = require("path");
const modules = process.env.MBK_TEST_NODE_MODULES;
const { chromium } = require(path.join(modules, "playwright-core"));
const axeSource = fs.readFileSync(path.join(modules, "axe-core", "axe.min.js"), "utf8");

const base = process.env.MBK_CONSOLE_URL;
const shots = process.env.MBK_CONSOLE_SHOTS;
const photos = process.env.MBK_CONSOLE_PHOTOS.split(":");
const TIMEOUT = 90_000;
fs.rmSync(shots, { recursive: true, force: true });
fs.mkdirSync(shots, { recursive: true });

const checked = [];
const problems = [];
let current = null; // the page, for a screenshot of where a failure happened

function fail(message) {
  throw new Error(message);
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, name) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    const detail = bad.map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    fail(`axe on ${name}: ${detail.join(" | ")}`);
  }
  checked.push(name);
}

/** Another route of the console, in the same page (a reload would end the session: tokens
 *  live in memory). */
async function go(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  current = page;
  page.setDefaultTimeout(TIMEOUT);
  // A script error or a Content-Security-Policy refusal is a failure of the console.
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // Refusals (4xx) are part of the flow, and the console shows them; a 5xx never is.
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()))
      problems.push(`console error: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 500) problems.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
    if (r.status() >= 400) console.error(`refused: ${r.request().method()} ${r.url()} ${r.status()}`);
  });

  // Log in.
  await page.goto(`${base}/console`);
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.textContent);
  if (focused !== "Skip to content") fail(`the first Tab reaches ${JSON.stringify(focused)}, not the skip link`);
  await page.getByLabel("Username").fill(process.env.MBK_CONSOLE_USER);
  await page.getByLabel("Password").fill("wrong password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: /invalid|password|unauthor/i }).waitFor();
  await accessible(page, "login");
  await page.getByLabel("Password").fill(process.env.MBK_CONSOLE_PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Projects", exact: true, level: 1 }).waitFor();

  // Create a project; the console goes on to its keys.
  await page.getByLabel("New project name").fill("Holiday photos");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.getByRole("heading", { name: "API keys", exact: true }).waitFor();
  const projectId = page.url().match(/projects\/([0-9a-f-]{36})/)[1];
  await accessible(page, "projects");

  // Make a key: shown once, with a copy button.
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.getByTestId("new-key").textContent()).trim();
  if (!/^mbk_[0-9a-f]{12}_[0-9a-f]{64}$/.test(key)) fail(`the new key reads ${key}`);
  await page.getByRole("row", { name: /console/ }).getByText("enabled").waitFor();
  await accessible(page, "keys");
  await shot(page, "keys");

  // A private project (MBK_CONSOLE_PRIVATE=1): every URL the grid shows must then be signed.
  if (process.env.MBK_CONSOLE_PRIVATE === "1") {
    await page.getByRole("link", { name: "Settings", exact: true }).click();
    await page.getByLabel("Visibility").selectOption("private");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Saved. Existing images keep their old variants until you sync.").waitFor();
  }

  // Drag and drop two photos onto the media tab.
  await page.getByRole("link", { name: "Media", exact: true }).click();
  const zone = page.getByTestId("drop-zone");
  await zone.waitFor();
  const files = photos.map((p) => ({ name: path.basename(p), type: "image/jpeg", b64: fs.readFileSync(p).toString("base64") }));
  const dataTransfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list) {
      const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
      dt.items.add(new File([bytes], f.name, { type: f.type }));
    }
    return dt;
  }, files);
  for (const type of ["dragenter", "dragover", "drop"]) await zone.dispatchEvent(type, { dataTransfer });
  for (const f of files) await page.locator(`.upload.done[data-name="${f.name}"]`).waitFor();
  // Both thumbnails appear once their variants are ready (the grid refreshes by itself).
  await page.waitForFunction(
    (n) => {
      const imgs = [...document.querySelectorAll(".media-grid .tile img")];
      return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0);
    },
    files.length,
    { timeout: TIMEOUT },
  );
  await page.locator('.tile[data-status="ready"]').nth(files.length - 1).waitFor();
  await accessible(page, "media");
  await shot(page, "media-grid");

  // Phone width: one column of controls, nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`at 390 px the media page is ${overflow} px too wide`);
  await shot(page, "media-grid-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  // Open one: every variant side by side, each loaded, with format, size and the plugin.
  const tiles = page.locator(".media-grid .tile");
  const keptId = await tiles.nth(0).getAttribute("data-file-id");
  const deletedId = await tiles.nth(1).getAttribute("data-file-id");
  await tiles.nth(0).getByRole("link").click();
  await page.getByRole("heading", { name: /^Variants \(2\)$/ }).waitFor();
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll(".variants-grid .variant img")];
    return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  });
  for (const name of ["thumbnail", "medium"]) {
    const card = page.locator(`.variant[data-variant="${name}"]`);
    const text = await card.textContent();
    if (!/webp/.test(text) || !/mbk-standard/.test(text) || !/\d+×\d+/.test(text) || !/KiB|B/.test(text))
      fail(`the ${name} card lacks format, plugin, dimensions or size: ${text}`);
  }
  if (!(await page.locator(".variant[data-variant=thumbnail]").textContent()).includes("150×150"))
    fail("the thumbnail is not 150×150 before the change");
  await page.getByRole("img", { name: "BlurHash placeholder" }).waitFor();
  await accessible(page, "file");
  await shot(page, "file");

  // Change the thumbnail's size to 120x120, save, sync.
  await go(page, `#/projects/${projectId}/settings`);
  await page.getByRole("heading", { name: "Variants", exact: true }).waitFor();
  const thumbRow = page.locator("table.variants tbody tr").filter({ has: page.locator('input[name=name][value="thumbnail"]') });
  // A mistake is shown at its field before anything is sent.
  await thumbRow.getByLabel("Width").fill("9000");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByRole("alert").filter({ hasText: "width is 1 to 8192" }).waitFor();
  await thumbRow.getByLabel("Width").fill("120");
  await thumbRow.getByLabel("Height").fill("120");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Saved. Existing images keep their old variants until you sync.").waitFor();
  await accessible(page, "settings");
  await page.getByRole("button", { name: "Sync variants" }).click();
  await page.getByText(/Sync queued as job/).waitFor();

  // Jobs: the sync completes, seen through the live refresh.
  await page.getByRole("link", { name: "Watch it in Jobs" }).click();
  await page.getByRole("heading", { name: "Jobs", exact: true, level: 2 }).waitFor();
  // The project's sync completes by queueing one job per file: wait until none is left.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("tbody tr")];
    const synced = rows.some((r) => r.textContent.includes("sync_project_variants") && r.querySelector('[data-job-status="completed"]'));
    return synced && !document.querySelector('[data-job-status="pending"], [data-job-status="processing"]');
  });
  await page.locator('tr:has-text("process_image") [data-job-status="completed"]').first().waitFor();
  if (!(await page.locator("tbody").textContent()).includes("mbk-standard")) fail("the jobs list shows no plugin runs");
  await accessible(page, "jobs");
  await shot(page, "jobs");

  // The file now has a 120x120 thumbnail.
  // As a person would: open the file again until the re-rendered thumbnail shows.
  const resized = page.locator('.variant[data-variant=thumbnail][data-status="ready"]').filter({ hasText: "120×120" });
  for (let attempt = 0; ; attempt++) {
    await go(page, `#/projects/${projectId}/media`);
    await page.getByRole("heading", { name: "Media", exact: true }).waitFor();
    await go(page, `#/files/${keptId}`);
    await page.getByRole("heading", { name: /^Variants/ }).waitFor();
    if (await resized.count()) break;
    if (attempt === 60) fail("the thumbnail never showed 120×120");
    await page.waitForTimeout(1000);
  }

  // Delete the other file, with a confirmation.
  await go(page, `#/files/${deletedId}`);
  await page.getByRole("button", { name: "Delete file" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
  await page.getByRole("heading", { name: "Media", exact: true }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll(".media-grid .tile").length === 1);

  // A webhook: its signing secret is shown once.
  await go(page, `#/projects/${projectId}/webhooks`);
  await page.getByLabel("Endpoint URL").fill("http://127.0.0.1:9/hooks");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.getByRole("region", { name: "The webhook's secret" }).getByText(/^whsec_/).waitFor();
  await page.getByRole("row", { name: /127\.0\.0\.1:9\/hooks/ }).waitFor();
  await accessible(page, "webhooks");

  // The su's pages: every project's jobs, plugins (register one), users (make one).
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Jobs", exact: true }).click();
  await page.getByRole("heading", { name: "Jobs of every project", exact: true, level: 1 }).waitFor();
  await page.getByRole("region", { name: "Jobs of Holiday photos" }).waitFor();
  await accessible(page, "admin-jobs");

  await nav.getByRole("link", { name: "Plugins", exact: true }).click();
  await page.getByRole("heading", { name: "Plugins", exact: true, level: 1 }).waitFor();
  await page.locator('[data-plugin="mbk-standard"]').getByText("builtin").waitFor();
  await page.getByLabel("Component (.wasm)").setInputFiles(process.env.MBK_CONSOLE_PLUGIN);
  await page.getByLabel("Name", { exact: true }).fill("sepia");
  await page.getByLabel("Version (semver)").fill("1.0.0");
  await page.getByRole("button", { name: "Register" }).click();
  // Its declared params are shown.
  await page.locator('[data-plugin="sepia"]').getByRole("cell", { name: "strength", exact: true }).waitFor();
  await accessible(page, "plugins");

  await nav.getByRole("link", { name: "Users", exact: true }).click();
  await page.getByRole("heading", { name: "Users", exact: true, level: 1 }).waitFor();
  await page.getByLabel("Username").fill("ada");
  await page.getByLabel("Password").fill("short");
  await page.getByLabel("Role").selectOption("admin");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.getByRole("alert").filter({ hasText: /password/i }).waitFor();
  await page.getByLabel("Password").fill("a long enough password");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.getByRole("row", { name: /ada/ }).getByText("admin").waitFor();
  await accessible(page, "users");

  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("heading", { name: "Log in", exact: true }).waitFor();

  await browser.close();
  if (problems.length) fail(problems.join("\n"));
  console.log(JSON.stringify({ project_id: projectId, kept_file_id: keptId, deleted_file_id: deletedId, checked }));
}

main().catch(async (e) => {
  console.error(e.stack || String(e));
  if (current) await current.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
  if (problems.length) console.error(problems.join("\n"));
  process.exit(1);
});
