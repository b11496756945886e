import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { createPipelineRequest, type HttpClient } from "@azure/core-rest-pipeline";

/** GETs a URL and parses its JSON body; throws on anything but 200. */
export type JsonFetcher = (url: string) => Promise<unknown>;

/**
 * A fetcher over an Azure SDK `HttpClient`: in sandbox mode the sandbox routing client (production
 * host names to the emulator, only the sandbox CA trusted), otherwise the default client.
 */
export function httpJsonFetcher(httpClient: HttpClient, timeoutMs = 5000): JsonFetcher {
  return async (url) => {
    const response = await httpClient.sendRequest(createPipelineRequest({ url, method: "GET", timeout: timeoutMs }));
    if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}`);
    return JSON.parse(response.bodyAsText ?? "") as unknown;
  };
}

export interface IssuerKeysOptions {
  /** Least time between two fetches (an unknown `kid` must not let callers hammer the issuer). */
  minRefreshIntervalMs?: number;
  /** Keys older than this are fetched again on the next use (Entra rolls keys without notice). */
  maxAgeMs?: number;
  now?: () => number;
  onRefreshFailed?: (error: Error) => void;
}

const MAX_KEYS = 100;
const PUBLIC_MEMBERS = ["kty", "n", "e", "crv", "x", "y"] as const;

/**
 * The issuer's signing keys: OpenID metadata → `jwks_uri` → JWKS, cached by `kid`. An unknown `kid`
 * triggers a refresh, at most once per `minRefreshIntervalMs`; concurrent callers share one fetch.
 */
export class IssuerKeys {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private readonly minRefreshIntervalMs: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    readonly issuer: string,
    private readonly fetchJson: JsonFetcher,
    private readonly options: IssuerKeysOptions = {},
  ) {
    this.minRefreshIntervalMs = options.minRefreshIntervalMs ?? 30_000;
    this.maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
    this.now = options.now ?? Date.now;
  }

  /** The key for `kid`, or undefined when the issuer does not publish it (after a refresh if allowed). */
  async get(kid: string): Promise<KeyObject | undefined> {
    const stale = this.now() - this.fetchedAt > this.maxAgeMs;
    const wanted = stale || !this.keys.has(kid);
    // A fetch under way answers everyone waiting for it; a new one only after the interval.
    if (wanted && (this.inflight || this.now() - this.attemptedAt >= this.minRefreshIntervalMs)) await this.refresh();
    return this.keys.get(kid);
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.load()
      .catch((error: Error) => this.options.onRefreshFailed?.(error))
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.attemptedAt = this.now();
    // OpenID Connect Discovery 4.1: a trailing slash of the issuer is dropped before the well-known path.
    const metadata = (await this.fetchJson(`${this.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`)) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 4.3: the metadata must name the issuer it was fetched for.
    if (metadata?.issuer !== this.issuer) throw new Error(`OpenID metadata names issuer ${String(metadata?.issuer)}, expected ${this.issuer}`);
    if (typeof metadata.jwks_uri !== "string" || !metadata.jwks_uri.startsWith("https://")) throw new Error("OpenID metadata has no https jwks_uri");
    const jwks = (await this.fetchJson(metadata.jwks_uri)) as { keys?: unknown };
    if (!Array.isArray(jwks?.keys)) throw new Error("the JWKS has no keys array");
    const keys = new Map<string, KeyObject>();
    for (const jwk of jwks.keys.slice(0, MAX_KEYS) as Array<JsonWebKey & { kid?: unknown; use?: unknown }>) {
      if (typeof jwk?.kid !== "string" || (jwk.use !== undefined && jwk.use !== "sig") || (jwk.kty !== "RSA" && jwk.kty !== "EC")) continue;
      try {
        // Only public members: a JWKS that leaked private parts must not make us hold them.
        const publicPart = Object.fromEntries(PUBLIC_MEMBERS.filter((name) => jwk[name] !== undefined).map((name) => [name, jwk[name]]));
        keys.set(jwk.kid, createPublicKey({ key: publicPart as JsonWebKey, format: "jwk" }));
      } catch {
        // A key we cannot read cannot verify anything; the others still can.
      }
    }
    this.keys = keys;
    this.fetchedAt = this.now();
  }
}
