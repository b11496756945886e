import { request } from "node:https";
import type { RunningSandbox } from "../../src/sandbox/index.js";

/** One call of the sandbox's admin API (`/_sandbox/...`), trusting its CA; the JSON answer, if any. */
export function sandboxAdmin(sandbox: Pick<RunningSandbox, "url" | "caPem">, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(new URL(path, sandbox.url), { method, ca: sandbox.caPem, headers: payload ? { "content-type": "application/json" } : {} }, (response) => {
      let text = "";
      response.on("data", (chunk) => (text += chunk));
      response.on("end", () => resolve(text ? JSON.parse(text) : undefined));
    });
    req.on("error", reject);
    req.end(payload);
  });
}
