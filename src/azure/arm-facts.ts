import type { Fact } from "../domain/checks/facts.js";
import { missingPermission } from "./azure-errors.js";

interface HttpErrorShape {
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { error?: { innererror?: { code?: string }; innerError?: { code?: string } } };
}

/** A fact that could not be read because Azure was briefly unavailable: worth retrying. */
export type GatheredFact<T> = Fact<T> & { transient?: boolean };

/**
 * Reads one fact for the pre-flight checks. 404 means missing; 401/403 mean the service's own
 * credential may not look (the check warns instead of failing); other trouble is unreadable and
 * marked transient so a job can retry.
 */
export async function readFact<T>(read: () => Promise<T | undefined>): Promise<GatheredFact<T>> {
  try {
    const value = await read();
    return value === undefined ? { status: "missing" } : { status: "found", value };
  } catch (error) {
    const http = (error ?? {}) as HttpErrorShape;
    const inner = http.details?.error?.innererror?.code ?? http.details?.error?.innerError?.code;
    const code = [http.code, inner].filter(Boolean).join("/") || (http.statusCode ? `HTTP ${http.statusCode}` : "error");
    if (http.statusCode === 404) return { status: "missing", detail: code };
    const reason = `${code}${http.statusCode ? ` (HTTP ${http.statusCode})` : ""}`;
    if (inner === "ForbiddenByFirewall") return { status: "unreadable", reason, cause: "firewall" };
    if (http.statusCode === 401 || http.statusCode === 403 || http.statusCode === 400) {
      // Name the permission Azure said is missing, so the check's message says what to grant.
      const missing = http.statusCode === 403 ? missingPermission(http.message) : undefined;
      return { status: "unreadable", reason: missing ? `${reason}: the service's identity lacks '${missing}'` : reason, cause: "permission" };
    }
    return { status: "unreadable", reason: `${reason}: Azure did not answer`, cause: "unavailable", transient: true };
  }
}

/**
 * A list call whose refusal keeps ARM's own message. The TypeSpec-generated SDKs (`@azure/arm-keyvault` 5)
 * check a page's status before reading its body, so a refused list throws "Pagination failed with
 * unexpected statusCode 403" without the message that names the missing action and scope; `onResponse`
 * sees the body first, and its message is put back on the error.
 */
export async function withArmErrorMessage<T>(call: (options: { onResponse: (response: { status: number; parsedBody?: unknown }) => void }) => Promise<T>): Promise<T> {
  let refused: { error?: { message?: unknown } } | undefined;
  try {
    return await call({
      onResponse: (response) => {
        if (response.status >= 400) refused = response.parsedBody as typeof refused;
      },
    });
  } catch (error) {
    const message = refused?.error?.message;
    if (error instanceof Error && typeof message === "string" && message) error.message = message;
    throw error;
  }
}

/** For the read cache: keep what Azure answered (found or missing), not what it could not give. */
export function keepAnswers(fact: Fact<unknown>): boolean {
  return fact.status !== "unreadable";
}

/** One SDK client per subscription, made on first use. */
export function perSubscription<T>(create: (subscriptionId: string) => T): (subscriptionId: string) => T {
  const clients = new Map<string, T>();
  return (subscriptionId) => {
    let client = clients.get(subscriptionId);
    if (!client) {
      client = create(subscriptionId);
      clients.set(subscriptionId, client);
    }
    return client;
  };
}
