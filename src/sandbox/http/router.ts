import type { RouteHandler, RouteParams, SandboxRequest } from "./types.js";

/**
 * A small path router. Patterns are `/`-separated; `{name}` matches one segment, `{*name}` any number
 * of segments (possibly none, joined with `/`). Literal segments compare case-insensitively because
 * ARM paths do (`resourceGroups` = `resourcegroups`). A trailing `/` in a pattern is a literal empty
 * segment, which is how Key Vault's "get latest" (`/keys/{name}/`) is told apart from `/keys/{name}`.
 */

type Segment = { kind: "literal"; value: string } | { kind: "param"; name: string } | { kind: "rest"; name: string };

interface Route<R> {
  methods: string[];
  pattern: string;
  segments: Segment[];
  handler: RouteHandler<R>;
}

/** A route as registered: its methods and pattern (what a service serves, for tests that check every route). */
export interface RouteDescription {
  methods: readonly string[];
  pattern: string;
}

export type RouteMatch<R> = { handler: RouteHandler<R>; params: RouteParams } | { methodNotAllowed: true } | undefined;

function parsePattern(pattern: string): Segment[] {
  return pattern
    .replace(/^\//, "")
    .split("/")
    .map((part): Segment => {
      const rest = /^\{\*(\w+)\}$/.exec(part);
      if (rest) return { kind: "rest", name: rest[1] as string };
      const param = /^\{(\w+)\}$/.exec(part);
      if (param) return { kind: "param", name: param[1] as string };
      return { kind: "literal", value: part.toLowerCase() };
    });
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function matchSegments(segments: Segment[], parts: string[], params: RouteParams): boolean {
  const [segment, ...remaining] = segments;
  if (!segment) return parts.length === 0;
  if (segment.kind === "rest") {
    // Try every split; the rest of the pattern decides which one fits.
    for (let take = 0; take <= parts.length; take++) {
      const attempt: RouteParams = {};
      if (matchSegments(remaining, parts.slice(take), attempt)) {
        Object.assign(params, attempt, { [segment.name]: parts.slice(0, take).map(safeDecode).join("/") });
        return true;
      }
    }
    return false;
  }
  const [part, ...rest] = parts;
  if (part === undefined) return false;
  if (segment.kind === "literal") {
    if (safeDecode(part).toLowerCase() !== segment.value) return false;
  } else {
    if (part === "") return false;
    params[segment.name] = safeDecode(part);
  }
  return matchSegments(remaining, rest, params);
}

export class Router<R = SandboxRequest> {
  private readonly routes: Route<R>[] = [];

  on(methods: string | string[], pattern: string, handler: RouteHandler<R>): this {
    this.routes.push({ methods: ([] as string[]).concat(methods), pattern, segments: parsePattern(pattern), handler });
    return this;
  }

  describe(): RouteDescription[] {
    return this.routes.map(({ methods, pattern }) => ({ methods: [...methods], pattern }));
  }

  match(method: string, path: string): RouteMatch<R> {
    const parts = path.replace(/^\//, "").split("/");
    let pathMatched = false;
    for (const route of this.routes) {
      const params: RouteParams = {};
      if (!matchSegments(route.segments, parts, params)) continue;
      if (route.methods.includes(method)) return { handler: route.handler, params };
      pathMatched = true;
    }
    return pathMatched ? { methodNotAllowed: true } : undefined;
  }
}
