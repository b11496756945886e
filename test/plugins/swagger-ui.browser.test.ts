import { accessSync, constants, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { chromium, type Locator, type Page } from "playwright-core";
import { KEYS } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";

/**
 * Swagger UI in a real browser (Debian's chromium through playwright-core), as a user on another machine
 * sees it: plain http on the machine's network address, not localhost (which browsers treat as secure).
 * Authorize with an API key, then "Try it out" with the prefilled example on POST /v1/validations (200)
 * and POST /v1/change-requests (202); no console error, no failed request, no CSP violation.
 */

/** Under tap's own (git-ignored) .tap folder: the page after the 202, or as it was when a step failed. */
const SCREENSHOTS = resolve(dirname(fileURLToPath(import.meta.url)), "../../.tap/screenshots");
const SCREENSHOT = join(SCREENSHOTS, "swagger-ui.png");
const FAILURE_SCREENSHOT = join(SCREENSHOTS, "swagger-ui-failed.png");
/** Just the change request's live response (the 202), readable at a glance. */
const ACCEPTED_SCREENSHOT = join(SCREENSHOTS, "swagger-ui-202.png");
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // A proxy from the environment must not stand between the browser and the machine's own address.
  "--no-proxy-server",
];
/** Generous: a loaded 2-core machine renders Swagger UI's 1 MB bundle slowly. Waits are on DOM states, never sleeps. */
const WAIT_MS = 60_000;

const inCi = Boolean(process.env.CI) && !["false", "0"].includes(process.env.CI!.toLowerCase());

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** CMK_CHROMIUM_PATH when set, else /usr/bin/chromium, else `chromium` on the PATH. */
function findChromium(): string | undefined {
  const explicit = process.env.CMK_CHROMIUM_PATH;
  const candidates = explicit
    ? [explicit]
    : ["/usr/bin/chromium", ...(process.env.PATH ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, "chromium"))];
  return candidates.find(isExecutable);
}

/** The machine's first non-internal IPv4 address: what another machine would type. */
function networkAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === "IPv4" && !address.internal)?.address;
}

const executablePath = findChromium();
const address = networkAddress();
const missing = !executablePath
  ? `chromium not found (${process.env.CMK_CHROMIUM_PATH ? `CMK_CHROMIUM_PATH=${process.env.CMK_CHROMIUM_PATH}` : "/usr/bin/chromium, or chromium on the PATH"}): install Debian's package with \`apt-get install chromium\`, or set CMK_CHROMIUM_PATH`
  : !address
    ? "this machine has no non-internal IPv4 address to open Swagger UI on"
    : undefined;

t.test(
  "Swagger UI over plain http on the machine's address: authorize, try out validations (200) and change requests (202)",
  { skip: missing && !inCi ? missing : false },
  async (t) => {
    if (missing) {
      t.fail(`${missing} (CI=${process.env.CI}: this test never skips in CI)`);
      return;
    }
    const started = Date.now();
    const { app } = await startStack(t);
    await app.listen({ host: "0.0.0.0", port: 0 });
    const origin = `http://${address}:${(app.server.address() as AddressInfo).port}`;

    await mkdir(SCREENSHOTS, { recursive: true });
    await Promise.all([SCREENSHOT, FAILURE_SCREENSHOT, ACCEPTED_SCREENSHOT].map((path) => rm(path, { force: true })));

    // A fresh profile per run, removed afterwards.
    const userDataDir = await mkdtemp(join(tmpdir(), "cmk-chromium-"));
    t.teardown(() => rm(userDataDir, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: executablePath!,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      timeout: WAIT_MS,
    });
    t.teardown(() => context.close());
    context.setDefaultTimeout(WAIT_MS);
    const page = context.pages()[0] ?? (await context.newPage());

    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
    page.on("request", (request) => {
      const url = request.url();
      if (!url.startsWith(`${origin}/`) && !url.startsWith("data:")) problems.push(`request off the page's origin (upgraded to https?): ${url}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} for ${response.request().method()} ${response.url()}`);
    });
    await page.exposeFunction("cmkCspViolation", (violation: string) => problems.push(`CSP violation: ${violation}`));
    await page.addInitScript({
      content: `document.addEventListener("securitypolicyviolation", (e) => window.cmkCspViolation(e.violatedDirective + " blocked " + e.blockedURI));`,
    });

    try {
      await useSwaggerUi(t, page, origin);
    } catch (error) {
      await page.screenshot({ path: FAILURE_SCREENSHOT, fullPage: true }).catch(() => undefined);
      t.comment(`screenshot of the failure: ${FAILURE_SCREENSHOT}`);
      throw error;
    }
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.comment(`screenshot: ${SCREENSHOT}`);

    t.same(problems, [], "no console error, page error, failed request or CSP violation");
    t.comment(`browser test took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  },
);

/** Open /docs, authorize with an API key, try out validations (200) and change requests (202). */
async function useSwaggerUi(t: Test, page: Page, origin: string): Promise<void> {
  const loaded = await page.goto(`${origin}/docs`, { waitUntil: "load" });
  t.equal(loaded?.status(), 200, `${origin}/docs loads`);
  const csp = (await loaded?.allHeaders())?.["content-security-policy"] ?? "";
  t.notMatch(csp, /upgrade-insecure-requests/, "over http the page does not ask for https");
  t.match(csp, /script-src 'self'(;|$)/, "scripts from the same origin only");
  await page.locator(".swagger-ui .info .title").filter({ hasText: "cmk-service" }).waitFor();
  t.equal(new URL(page.url()).protocol, "http:", "still on http");

  // Authorize: the API key scheme (x-api-key) with an operator's key, then close the dialog.
  await page.locator(".scheme-container button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.waitFor();
  const apiKeyScheme = dialog.locator(".auth-container").filter({ hasText: "x-api-key" });
  await apiKeyScheme.locator("input").fill(KEYS.operator);
  await apiKeyScheme.locator("button.authorize").click();
  await apiKeyScheme.locator("button", { hasText: "Logout" }).waitFor();
  await apiKeyScheme.locator("button.btn-done").click();
  await dialog.waitFor({ state: "detached" });
  t.pass("authorized with an API key");

  const { response: _validated, ...validation } = await tryItOut(page, "/v1/validations");
  t.match(validation.status, /^200\b/, "POST /v1/validations with the prefilled example: 200", validation);
  const { response, ...change } = await tryItOut(page, "/v1/change-requests");
  t.match(change.status, /^202\b/, "POST /v1/change-requests with the prefilled example: 202", change);
  await response.screenshot({ path: ACCEPTED_SCREENSHOT });
  t.comment(`screenshot of the 202: ${ACCEPTED_SCREENSHOT}`);
}

/** Expands the POST operation on `path`, "Try it out", Execute with the prefilled body; the live response. */
async function tryItOut(page: Page, path: string): Promise<{ status: string; body: string; requestBody: string; response: Locator }> {
  const operation: Locator = page.locator(".opblock.opblock-post").filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
  await operation.locator(".opblock-summary-control").click();
  await operation.locator("button.try-out__btn").click();
  const editor = operation.locator("textarea.body-param__text");
  await editor.waitFor();
  const requestBody = await editor.inputValue();
  if (!/"operation"/.test(requestBody)) throw new Error(`Swagger UI prefilled no example body for POST ${path}: ${JSON.stringify(requestBody)}`);
  await operation.locator("button.execute").click();
  const status = operation.locator(".responses-wrapper .live-responses-table .response-col_status:not(.col_header)");
  await status.waitFor();
  const body = operation.locator(".responses-wrapper .live-responses-table .response-col_description:not(.col_header)");
  const response = operation.locator(".responses-wrapper .live-responses-table");
  return { status: (await status.innerText()).trim(), body: (await body.innerText()).trim(), requestBody, response };
}
