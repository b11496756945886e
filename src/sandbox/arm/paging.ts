import { json } from "../http/responses.js";
import type { SandboxResponse } from "../http/types.js";
import { armError } from "./errors.js";
import type { ArmRequest } from "./request.js";

/**
 * ARM list paging: `{ value }` while everything fits one page, else `{ value, nextLink }` where
 * `nextLink` is the same request with `$skipToken` (an offset here; ARM's tokens are opaque, clients
 * follow the link as given). `$top`, where the operation has it, sets the page size (up to `maxPageSize`).
 */

export interface PageOptions {
  pageSize: number;
  /** Honour `$top` as the page size, as Resources_List and ResourceGroups_List do. */
  top?: boolean;
  maxPageSize?: number;
}

export function pagedList<T>(request: ArmRequest, items: readonly T[], options: PageOptions, toJson: (item: T) => unknown = (item) => item): SandboxResponse {
  const skipToken = request.query.get("$skipToken") ?? request.query.get("$skiptoken");
  const offset = skipToken === null ? 0 : Number(skipToken);
  if (!Number.isInteger(offset) || offset < 0) return armError(400, "InvalidSkipToken", `The skip token '${skipToken}' is not valid.`);
  let pageSize = options.pageSize;
  const top = options.top ? request.query.get("$top") : null;
  if (top !== null) {
    const requested = Number(top);
    if (!Number.isInteger(requested) || requested < 1) return armError(400, "InvalidQueryParameterValue", `The value '${top}' of query parameter '$top' is not valid; it must be a positive integer.`);
    pageSize = Math.min(requested, options.maxPageSize ?? options.pageSize);
  }
  const value = items.slice(offset, offset + pageSize).map(toJson);
  if (offset + pageSize >= items.length) return json(200, { value });
  const next = new URLSearchParams(request.query);
  next.delete("$skiptoken");
  next.set("$skipToken", String(offset + pageSize));
  return json(200, { value, nextLink: `${request.armOrigin}${request.path}?${next.toString()}` });
}
