// Swagger UI as a developer uses it, in Debian's headless Chromium (playwright-core): open
// /swagger-ui, Authorize with a bearer token, "Try it out" on GET /auth/me, Execute, and see
// 200 with the username. A screenshot is kept.
//
// Environment: MBK_SWAGGER_URL (the host), MBK_SWAGGER_TOKEN (an access token),
// MBK_SWAGGER_USER (the username it belongs to), MBK_SWAGGER_SHOTS (screenshot folder),
// MBK_TEST_NODE_MODULES (where scripts/test installed the npm packages).

"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require(path.join(process.env.MBK_TEST_NODE_MODULES, "playwright-core"));

const shots = process.env.MBK_SWAGGER_SHOTS;
fs.rmSync(shots, { recursive: true, force: true });
fs.mkdirSync(shots, { recursive: true });

async function main() {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.setDefaultTimeout(60_000);
  try {
    await page.goto(`${process.env.MBK_SWAGGER_URL}/swagger-ui/`);
    await page.getByRole("heading", { name: /MediaBlobKit/ }).waitFor();

    // Authorize: the bearer scheme's form in the dialog.
    await page.locator("button.authorize").first().click();
    const bearer = page.locator(".auth-container").filter({ hasText: /bearer\s*\(http, Bearer\)/ });
    await bearer.locator("input").fill(process.env.MBK_SWAGGER_TOKEN);
    // Swagger UI labels its buttons for screen readers ("Apply credentials"): find them by text.
    await bearer.locator("button", { hasText: /^Authorize$/ }).click();
    await bearer.locator("button", { hasText: /^Logout$/ }).waitFor();
    await page.locator(".modal-ux button", { hasText: /^Close$/ }).first().click();

    // GET /auth/me: Try it out, Execute.
    const operation = page.locator(".opblock-get").filter({ has: page.locator('[data-path="/auth/me"]') });
    await operation.locator(".opblock-summary").click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    await operation.getByRole("button", { name: "Execute" }).click();
    const live = operation.locator(".live-responses-table .response");
    await live.locator(".response-col_status").filter({ hasText: "200" }).waitFor();
    const body = await live.locator(".response-col_description pre").first().textContent();
    const me = JSON.parse(body);
    if (me.username !== process.env.MBK_SWAGGER_USER) throw new Error(`GET /auth/me answered ${body}`);
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(shots, "swagger-auth-me.png"), fullPage: false });
    console.log(JSON.stringify({ status: 200, username: me.username }));
  } catch (e) {
    await page.screenshot({ path: path.join(shots, "swagger-failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
