import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ValidationFailedError } from "../errors.js";

/**
 * Continuation tokens as sealed cursors: the position in a list (a job index member, an audit stream
 * id) encrypted and authenticated with AES-256-GCM, so a caller learns nothing from a token (not the ids
 * and times of records outside its subscriptions that a page skipped) and cannot make one up. The
 * caller's subscription scope and the query's filters are the GCM associated data: a token opens only
 * for the query that produced it, under the same scope.
 *
 * The key is made once per deployment and kept in Redis (the job store's `pageCursorKey`, SET NX, so
 * every API process sharing the prefix uses the same one and a token works on any of them); each process
 * reads it once. Losing it (a flushed Redis) only invalidates tokens in flight: callers list again.
 */
export interface PageCursors {
  seal(position: string, binding: object): Promise<string>;
  /** The position, or 400 ValidationFailed naming continuationToken. */
  open(token: string, binding: object): Promise<string>;
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The same object always gives the same bytes, whatever the order its properties were set in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, member]) => member !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, member]) => `${JSON.stringify(name)}:${canonical(member)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export function invalidContinuationToken(): ValidationFailedError {
  return new ValidationFailedError([
    {
      path: "/query/continuationToken",
      message: "is not a continuation token of this query: send the nextLink of the previous page as it is, with the same filters and credential",
    },
  ]);
}

/**
 * What a token is bound to: the list, the caller's scope (its subscription allow-list, or every
 * subscription) and the query's filters, as the nextLink repeats them.
 */
export function queryBinding(list: string, subscriptions: readonly string[] | undefined, filters: object): object {
  return { list, scope: subscriptions ? [...subscriptions].sort() : "all", filters };
}

/** Cursors sealed with the key `readKey` gives (read once; a failed read is tried again by the next call). */
export function pageCursors(readKey: () => Promise<Buffer>): PageCursors {
  let key: Promise<Buffer> | undefined;
  const loadKey = (): Promise<Buffer> => {
    key ??= readKey();
    key.catch(() => (key = undefined));
    return key;
  };

  return {
    async seal(position, binding) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", await loadKey(), iv);
      cipher.setAAD(Buffer.from(canonical(binding)));
      const sealed = Buffer.concat([cipher.update(position, "utf8"), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, sealed, cipher.getAuthTag()]).toString("base64url");
    },

    async open(token, binding) {
      const bytes = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, "base64url") : Buffer.alloc(0);
      if (bytes.length < 1 + IV_BYTES + TAG_BYTES + 1 || bytes[0] !== VERSION) throw invalidContinuationToken();
      const iv = bytes.subarray(1, 1 + IV_BYTES);
      const tag = bytes.subarray(bytes.length - TAG_BYTES);
      const decipher = createDecipheriv("aes-256-gcm", await loadKey(), iv);
      decipher.setAAD(Buffer.from(canonical(binding)));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString("utf8");
      } catch {
        throw invalidContinuationToken();
      }
    },
  };
}
