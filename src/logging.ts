import type { LoggerOptions } from "pino";

/**
 * Log redaction: credentials, secrets and tokens never reach a log line, however deeply they are nested.
 * A value is withheld by its key's name (any case), at any depth: request headers (authorization,
 * x-api-key, cookies) and anything a careless log call might pass (a token, a client secret, a password).
 */
export const SECRET_LOG_KEYS: ReadonlySet<string> = new Set(
  ["authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie", "token", "accessToken", "access_token", "clientSecret", "client_secret", "secret", "password", "apiKey"].map(
    (key) => key.toLowerCase(),
  ),
);

const CENSOR = "[Redacted]";
/** A key of SECRET_LOG_KEYS anywhere in a JSON line (a key: quoted, then a colon). */
const SECRET_KEY_IN_JSON = new RegExp(`"(?:${[...SECRET_LOG_KEYS].map((key) => key.replace(/[-_]/g, "[-_]")).join("|")})":`, "i");

function redactValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactValue);
  if (value === null || typeof value !== "object") return value;
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) copy[key] = SECRET_LOG_KEYS.has(key.toLowerCase()) ? CENSOR : redactValue(child);
  return copy;
}

/**
 * Redacts one finished log line (pino's `streamWrite` hook). Checked once per line with one search, not
 * per logged object and path as pino's `redact` does (a quarter of the logging cost of every request):
 * the few lines that hold a secret key are parsed and written again without its values.
 */
export function redactLogLine(line: string): string {
  if (!SECRET_KEY_IN_JSON.test(line)) return line;
  try {
    return `${JSON.stringify(redactValue(JSON.parse(line)))}\n`;
  } catch {
    // Not JSON after all (pino writes JSON lines): withhold it rather than risk a secret.
    return `${JSON.stringify({ level: 40, time: Date.now(), msg: "log line withheld: it names a secret and could not be redacted" })}\n`;
  }
}

/** pino's options for every logger of the service (server.ts, and buildApp's default). */
export function loggerOptions(level: string): LoggerOptions {
  return { level, hooks: { streamWrite: redactLogLine } };
}
