import { Writable } from "node:stream";
import pino from "pino";
import t from "tap";
import { loggerOptions, redactLogLine } from "../src/logging.js";

t.test("a secret's value is withheld by its key's name, at any depth and in any case", async (t) => {
  const lines: string[] = [];
  const logger = pino(loggerOptions("info"), new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));
  const child = logger.child({ reqId: "r-1" });
  child.info({ req: { method: "GET", url: "/v1/jobs" }, res: { statusCode: 200 }, responseTime: 1.5 }, "request completed");
  child.info({ headers: { Authorization: "Bearer eyJ.secret-1", "x-api-key": "secret-2", accept: "*/*" } }, "headers");
  child.warn({ deep: { list: [{ credentials: { clientSecret: "secret-3", password: { nested: "secret-4" } } }] }, access_token: "secret-5" }, "nested");
  child.info({ continuationToken: "kept", tokens: 3 }, "near misses are kept");
  const log = lines.join("");
  for (const secret of ["secret-1", "secret-2", "secret-3", "secret-4", "secret-5"]) t.notOk(log.includes(secret), `${secret} withheld`);
  const [completed, headers, , near] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(completed, { ...completed, reqId: "r-1", msg: "request completed", res: { statusCode: 200 } }, "a line without secrets is written as it was");
  t.same(headers!.headers, { Authorization: "[Redacted]", "x-api-key": "[Redacted]", accept: "*/*" });
  t.equal(near!.continuationToken, "kept");
  t.equal(near!.tokens, 3);
  t.equal(lines.length, 4);
});

t.test("a line that names a secret but is not JSON is withheld", async (t) => {
  const line = redactLogLine('{"token": "abc"');
  t.notOk(line.includes("abc"));
  t.match(line, /withheld/);
  t.equal(redactLogLine('{"msg":"plain"}\n'), '{"msg":"plain"}\n', "lines without secret keys are not parsed");
});
