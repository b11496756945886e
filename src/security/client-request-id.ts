import type { IncomingHttpHeaders } from "node:http";

/** Client ids we keep: short, and nothing that could break a log line or a header (no CR/LF, quotes, spaces). */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The caller's own X-Request-Id, when it is safe to record; undefined otherwise (ignored, not refused).
 * It is kept next to the server's id (`clientRequestId` in logs and audit entries), never instead of it:
 * a client id is not unique and not ours to trust.
 */
export function clientRequestIdOf(headers: IncomingHttpHeaders): string | undefined {
  const value = headers["x-request-id"];
  return typeof value === "string" && CLIENT_REQUEST_ID.test(value) ? value : undefined;
}
