import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import t from "tap";
import { SWAGGER_LOGO_STYLE } from "../../src/plugins/external/swagger.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";

/** Styles Swagger UI may use: its own files, and the one inline style of its logo by hash. */
const SWAGGER_STYLE_SRC = ["'self'", `'sha256-${createHash("sha256").update(SWAGGER_LOGO_STYLE).digest("base64")}'`];

/** A CSP header as directive → sources. */
function directives(header: unknown): Map<string, string[]> {
  return new Map(
    String(header)
      .split(";")
      .map((part) => part.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

t.test("security headers on API answers: a deny-all CSP, nosniff, no framing", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  for (const response of [
    await app.inject({ method: "GET", url: "/healthz" }),
    await app.inject({ method: "GET", url: "/v1/jobs/x" }),
    await app.inject({ method: "GET", url: "/v1/jobs/x", headers: { "x-api-key": KEYS.reader } }),
  ]) {
    const csp = directives(response.headers["content-security-policy"]);
    t.same(csp.get("default-src"), ["'none'"], `${response.statusCode}: default-src 'none'`);
    t.same(csp.get("frame-ancestors"), ["'none'"]);
    t.equal(response.headers["x-content-type-options"], "nosniff");
    t.equal(response.headers["x-frame-options"], "SAMEORIGIN");
    t.notOk(response.headers["strict-transport-security"], "no HSTS over plain http");
    t.notOk(response.headers["cross-origin-opener-policy"], "no COOP over plain http (browsers ignore it there, with a console error)");
    t.notOk(csp.has("upgrade-insecure-requests"));
    t.equal(response.headers["referrer-policy"], "no-referrer");
    t.notOk(response.headers["x-powered-by"]);
  }
});

t.test("Swagger UI at /docs loads its scripts and styles under its own CSP", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const page = await app.inject({ method: "GET", url: "/docs/" });
  t.equal(page.statusCode, 200);
  const csp = directives(page.headers["content-security-policy"]);
  t.same(csp.get("script-src"), ["'self'"], "scripts: same origin only, no inline");
  t.ok(csp.get("style-src")?.includes("'self'"));
  t.notOk(csp.get("script-src")?.includes("'unsafe-inline'") || csp.get("script-src")?.includes("'unsafe-eval'"));
  t.same(csp.get("style-src"), SWAGGER_STYLE_SRC, "styles: same origin only, and the logo's inline style by hash");
  t.same(csp.get("script-src-attr"), ["'none'"]);
  t.same(csp.get("object-src"), ["'none'"]);
  t.same(csp.get("frame-ancestors"), ["'none'"]);
  t.notOk(csp.has("upgrade-insecure-requests"), "over plain http the browser is not sent to https");
  t.notOk(page.headers["strict-transport-security"], "no HSTS over plain http");
  t.notOk(page.headers["cross-origin-opener-policy"], "no COOP over plain http");

  t.notMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/i, "no inline <script> the CSP would block");
  const scripts = [...page.body.matchAll(/<script[^>]*\bsrc="([^"]+)"/gi)].map((match) => match[1]!);
  const styles = [...page.body.matchAll(/<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"/gi)].map((match) => match[1]!);
  t.ok(scripts.length >= 2 && styles.length >= 1, `${scripts.length} scripts, ${styles.length} style sheets`);
  for (const [source, type] of [...scripts.map((s) => [s, /javascript/] as const), ...styles.map((s) => [s, /text\/css/] as const)]) {
    const url = new URL(source, "http://localhost/docs/");
    t.equal(url.origin, "http://localhost", `${source} is same-origin ('self')`);
    const asset = await app.inject({ method: "GET", url: url.pathname });
    t.equal(asset.statusCode, 200, `${url.pathname} loads`);
    t.match(asset.headers["content-type"], type);
    t.ok(asset.body.length > 0);
  }
  const initializer = await app.inject({ method: "GET", url: "/docs/static/swagger-initializer.js" });
  t.match(initializer.body, /json/, "the initializer fetches the document from the same origin");
  t.equal((await app.inject({ method: "GET", url: "/docs/json" })).statusCode, 200);
});

t.test("the inline style the CSP allows by hash is the one in the installed Swagger UI", async (t) => {
  const swaggerUiDir = dirname(createRequire(import.meta.url).resolve("@fastify/swagger-ui"));
  const preset = await readFile(join(swaggerUiDir, "static", "swagger-ui-standalone-preset.js"), "utf8");
  const inlineStyles = [...preset.matchAll(/createElement\("style",null,"([^"]*)"\)/g)].map((match) => match[1]);
  t.same(inlineStyles, [SWAGGER_LOGO_STYLE], "one inline <style> (the logo's), unchanged: else update SWAGGER_LOGO_STYLE in swagger.ts");
});

t.test("over https (a trusted proxy's X-Forwarded-Proto) HSTS and upgrade-insecure-requests; never on a client's word", async (t) => {
  const https = { "x-forwarded-proto": "https" };
  const behindProxy = await buildTestApp(t, testConfig(t, { CMK_TRUST_PROXY_HOPS: "1" }));
  const docs = await behindProxy.inject({ method: "GET", url: "/docs/", headers: https });
  t.equal(docs.statusCode, 200);
  const docsCsp = directives(docs.headers["content-security-policy"]);
  t.ok(docsCsp.has("upgrade-insecure-requests"), "Swagger UI over https: upgrade-insecure-requests");
  t.same(docsCsp.get("script-src"), ["'self'"], "and the same strict policy otherwise");
  t.same(docsCsp.get("style-src"), SWAGGER_STYLE_SRC);
  t.equal(docs.headers["strict-transport-security"], "max-age=31536000; includeSubDomains");
  t.equal(docs.headers["cross-origin-opener-policy"], "same-origin");
  for (const url of ["/docs/static/swagger-ui-bundle.js", "/docs/json"]) {
    const asset = await behindProxy.inject({ method: "GET", url, headers: https });
    t.equal(asset.statusCode, 200, url);
    t.match(asset.headers["strict-transport-security"], /max-age=31536000/, `${url}: HSTS`);
  }
  for (const request of [
    { method: "GET", url: "/healthz" },
    { method: "GET", url: "/v1/jobs/x" },
    { method: "GET", url: "/v1/jobs/x", headers: { "x-api-key": KEYS.reader } },
  ] as const) {
    const response = await behindProxy.inject({ ...request, headers: { ...https, ...("headers" in request ? request.headers : {}) } });
    const csp = directives(response.headers["content-security-policy"]);
    t.same(csp.get("default-src"), ["'none'"], `${request.url} (${response.statusCode}) over https: API answers keep default-src 'none'`);
    t.equal(response.headers["strict-transport-security"], "max-age=31536000; includeSubDomains", `${request.url}: HSTS`);
    t.equal(response.headers["cross-origin-opener-policy"], "same-origin", `${request.url}: COOP`);
  }
  const plainBehindProxy = await behindProxy.inject({ method: "GET", url: "/docs/", headers: { "x-forwarded-proto": "http" } });
  t.notOk(directives(plainBehindProxy.headers["content-security-policy"]).has("upgrade-insecure-requests"), "the proxy says http: no upgrade");
  t.notOk(plainBehindProxy.headers["strict-transport-security"], "and no HSTS");

  // With no trusted proxy (the default) X-Forwarded-Proto is the client's word, and ignored.
  const direct = await buildTestApp(t, testConfig(t));
  for (const url of ["/docs/", "/healthz"]) {
    const response = await direct.inject({ method: "GET", url, headers: https });
    t.notOk(directives(response.headers["content-security-policy"]).has("upgrade-insecure-requests"), `${url}: untrusted X-Forwarded-Proto ignored`);
    t.notOk(response.headers["strict-transport-security"], `${url}: no HSTS`);
  }
});

t.test("behind a configured proxy the audit sees the client's address, not the proxy's", async (t) => {
  const { buildTestApp: build, testConfig: configFor, KEYS: keys } = await import("../helpers/app.js");
  const clientOf = async (env: Record<string, string>) => {
    const app = await build(t, configFor(t, env));
    // A refused change request is audited with the address it came from.
    await app.inject({ method: "POST", url: "/v1/change-requests", payload: { operation: "SetKey" }, remoteAddress: "10.0.0.1", headers: { "x-api-key": keys.operator, "x-forwarded-for": "203.0.113.7" } });
    for (let tries = 0; tries < 50; tries += 1) {
      const entries = (await app.inject({ method: "GET", url: "/v1/audit", headers: { "x-api-key": keys.admin } })).json().value as Array<{ client: { ip: string } }>;
      if (entries.length > 0) return entries[0]!.client.ip;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return "no audit entry";
  };
  t.equal(await clientOf({}), "10.0.0.1", "X-Forwarded-For is ignored by default");
  t.equal(await clientOf({ CMK_TRUST_PROXY_HOPS: "1" }), "203.0.113.7");
});
