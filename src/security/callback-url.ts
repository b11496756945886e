import { ConfigError, type Config } from "../config.js";
import { hostMatches } from "../azure/cloud.js";

/**
 * Where a `callbackUrl` may point: https on the hosts and ports of CMK_CALLBACK_ALLOWED_HOSTS, and in
 * sandbox mode also http on a loopback entry. Anything else is refused before the job exists, so the
 * service cannot be made to call internal addresses, nor itself.
 */
export interface CallbackTarget {
  /** A host name, or `*.suffix` for one label more. */
  host: string;
  /** 443 unless the entry names one. */
  port: number;
}

export interface CallbackUrlPolicy {
  targets: readonly CallbackTarget[];
  /** Sandbox mode: plain http to these loopback hosts (on their entries' ports) too. */
  httpHosts: readonly string[];
}

const LOOPBACK_HOSTS = ["localhost", "127.0.0.1"];
const ENTRY = /^((?:\*\.)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([0-9]{1,5}))?$/;

/**
 * Parses `host[:port]` entries (`hooks.example.com`, `*.example.org`, `hooks.example.com:8443`,
 * `127.0.0.1:9000`). Loopback hosts must name their port: none is allowed by default, so a webhook can
 * never reach the API itself unless the operator says so.
 */
export function parseCallbackTargets(value: string | undefined): CallbackTarget[] {
  const entries = (value ?? "")
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== "");
  return entries.map((entry) => {
    const match = ENTRY.exec(entry);
    const port = match?.[2] === undefined ? undefined : Number(match[2]);
    if (!match || (port !== undefined && (port < 1 || port > 65_535))) {
      throw new ConfigError("CMK_CALLBACK_ALLOWED_HOSTS", `"${entry}" is not host[:port] (e.g. hooks.example.com, *.example.org, hooks.example.com:8443)`);
    }
    if (LOOPBACK_HOSTS.includes(match[1]!) && port === undefined) {
      throw new ConfigError("CMK_CALLBACK_ALLOWED_HOSTS", `"${entry}" must name its port (e.g. ${entry}:9000): no loopback port is allowed by default`);
    }
    return { host: match[1]!, port: port ?? 443 };
  });
}

export function callbackUrlPolicy(config: Pick<Config, "CMK_MODE" | "CMK_CALLBACK_ALLOWED_HOSTS">): CallbackUrlPolicy {
  return { targets: parseCallbackTargets(config.CMK_CALLBACK_ALLOWED_HOSTS), httpHosts: config.CMK_MODE === "sandbox" ? LOOPBACK_HOSTS : [] };
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
  if (policy.targets.length === 0) return "is not accepted: no callback hosts are configured (CMK_CALLBACK_ALLOWED_HOSTS)";
  const host = parsed.hostname.toLowerCase();
  const https = parsed.protocol === "https:";
  // URL drops a scheme's default port, so `:443` and no port are the same target.
  const port = parsed.port === "" ? (https ? 443 : 80) : Number(parsed.port);
  const allowed = policy.targets.some((target) => hostMatches(host, target.host) && target.port === port);
  if (allowed && (https || (parsed.protocol === "http:" && policy.httpHosts.includes(host)))) return undefined;
  const listed = policy.targets.map((target) => (target.port === 443 ? target.host : `${target.host}:${target.port}`)).join(", ");
  const http = policy.httpHosts.length > 0 ? `; http only on ${policy.httpHosts.join(", ")} at a listed port` : "";
  return `must be https on an allowed host and port (${listed}; port 443 unless the entry names one${http}); ${parsed.protocol}//${parsed.host.toLowerCase()} is not`;
}
