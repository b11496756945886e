import type { Config } from "../config.js";
import { hostMatches } from "../azure/cloud.js";

/**
 * Where a `callbackUrl` may point: https on configured hosts (`*.example.com` patterns allowed), and in
 * sandbox mode also http on the loopback names. Anything else is refused before the job exists, so the
 * service cannot be made to call internal addresses.
 */
export interface CallbackUrlPolicy {
  httpsHosts: readonly string[];
  httpHosts: readonly string[];
}

const SANDBOX_HOSTS = ["localhost", "127.0.0.1"];

export function callbackUrlPolicy(config: Pick<Config, "CMK_MODE" | "CMK_CALLBACK_ALLOWED_HOSTS">): CallbackUrlPolicy {
  const configured = (config.CMK_CALLBACK_ALLOWED_HOSTS ?? "")
    .split(",")
    .map((host) => host.trim().toLowerCase())
    .filter((host) => host !== "");
  const sandbox = config.CMK_MODE === "sandbox" ? SANDBOX_HOSTS : [];
  return { httpsHosts: [...configured, ...sandbox], httpHosts: sandbox };
}

/** Why `url` is not an allowed callback target, or undefined when it is. */
export function callbackUrlProblem(url: string, policy: CallbackUrlPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a URL";
  }
  if (parsed.username || parsed.password) return "must not carry credentials";
  const host = parsed.hostname.toLowerCase();
  const allowed = (hosts: readonly string[]) => hosts.some((pattern) => hostMatches(host, pattern));
  if (parsed.protocol === "https:" && allowed(policy.httpsHosts)) return undefined;
  if (parsed.protocol === "http:" && allowed(policy.httpHosts)) return undefined;
  if (policy.httpsHosts.length === 0) return "is not accepted: no callback hosts are configured (CMK_CALLBACK_ALLOWED_HOSTS)";
  const http = policy.httpHosts.length > 0 ? `; http only on ${policy.httpHosts.join(", ")}` : "";
  return `must be https on an allowed host (${policy.httpsHosts.join(", ")}${http}); ${parsed.protocol}//${host} is not`;
}
