import t from "tap";
import { callbackInfo, displayCallbackUrl, webhookAttempts, webhookRetryDelay, withCallback } from "../../src/domain/webhooks.js";
import type { JobStatusMonitor } from "../../src/schemas/jobs.js";

t.test("retry schedule: exponential, capped at an hour, at least 24 hours in all", async (t) => {
  for (const base of [10_000, 1000, 100]) {
    const attempts = webhookAttempts(base);
    let total = 0;
    for (let retry = 1; retry < attempts; retry += 1) total += webhookRetryDelay(retry, base);
    t.ok(total >= 24 * 3_600_000, `base ${base} ms: ${attempts} attempts over ${(total / 3_600_000).toFixed(1)} h`);
    t.ok(webhookRetryDelay(attempts - 1, base) <= 3_600_000);
  }
  t.equal(webhookRetryDelay(1, 10_000), 10_000);
  t.equal(webhookRetryDelay(3, 10_000), 40_000);
});

t.test("what callers see of a callback: the URL without query or fragment, the last attempt's outcome", async (t) => {
  t.equal(displayCallbackUrl("https://hooks.example.com/cmk?token=secret#x"), "https://hooks.example.com/cmk");
  t.equal(displayCallbackUrl("not a url"), "(invalid)");
  const attempt = (outcome: "Delivered" | "Retrying" | "Failed") => ({ attempt: 1, dateTime: "2024-01-01T00:00:00.000Z", durationMs: 5, outcome });
  t.equal(callbackInfo("https://h.example.com/", []).status, "Pending");
  t.equal(callbackInfo("https://h.example.com/", [attempt("Retrying")]).status, "Retrying");
  t.equal(callbackInfo("https://h.example.com/", [attempt("Retrying"), attempt("Delivered")]).status, "Delivered");
  t.equal(callbackInfo("https://h.example.com/", [attempt("Failed")]).status, "Failed");
  const monitor = { id: "j" } as JobStatusMonitor;
  t.equal(withCallback(monitor, undefined, []), monitor, "a job without a callbackUrl shows none");
  t.same(withCallback(monitor, "https://h.example.com/x?k=1", []).callback, { url: "https://h.example.com/x", status: "Pending", deliveries: [] });
});
