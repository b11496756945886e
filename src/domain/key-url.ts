/** Key Vault / Managed HSM key identifiers. Pure: no I/O. */

export interface KeyUrl {
  url: string;
  /** `https://{vault}.{suffix}` */
  vaultUrl: string;
  vaultName: string;
  host: string;
  keyName: string;
  version: string | undefined;
}

/**
 * The only spelling of a key URL the service takes: lower-case ASCII DNS host without port, `/keys/`,
 * a key name and an optional version, nothing else (no user, query, fragment, percent-encoding, dot
 * segments, spaces or control characters). What reaches ARM is then exactly what was checked. The
 * checks (key-url-checks.ts) judge the values: the host's suffix, the version, the name's length.
 */
const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const CANONICAL_KEY_URL = new RegExp(`^https://(${LABEL}(?:\\.${LABEL})+)/keys/([0-9A-Za-z-]+)(?:/([0-9A-Za-z]+))?$`);

/**
 * Splits a key URL into its parts without judging the values (the checks do that). Returns undefined
 * when the string is not exactly a canonical `https://{host}/keys/{name}[/{version}]`.
 */
export function parseKeyUrl(url: string): KeyUrl | undefined {
  const match = CANONICAL_KEY_URL.exec(url);
  if (!match) return undefined;
  const [, host, keyName, version] = match as unknown as [string, string, string, string | undefined];
  return { url, vaultUrl: `https://${host}`, vaultName: host.split(".")[0]!, host, keyName, version };
}

/** True for a Managed HSM's host (`{name}.managedhsm.azure.net`, or its sovereign-cloud spelling). */
export function isManagedHsmKey(key: Pick<KeyUrl, "host">): boolean {
  return key.host.split(".")[1] === "managedhsm";
}

/** The versioned key id as Key Vault returns it in `kid`. */
export function formatKeyUrl(vaultUrl: string, keyName: string, version: string): string {
  return `${vaultUrl.replace(/\/+$/, "")}/keys/${keyName}/${version}`;
}

/**
 * Why `url` is not a canonical key URL (undefined when it is), with the canonical spelling of what a
 * URL parser would make of it when there is one: the caller must send that, never something that
 * only becomes it after normalization.
 */
export function keyUrlFormProblem(url: string, suffixes: readonly string[]): string | undefined {
  if (parseKeyUrl(url)) return undefined;
  const form = suffixes.map((suffix) => `https://{name}.${suffix}/keys/{key}/{version}`).join(" or ");
  const suggestion = canonicalSpelling(url);
  return (
    `is not a key identifier in canonical form; send ${suggestion ? `${suggestion} exactly. The form is ${form}` : `exactly ${form}`}: ` +
    `host in lower case; no port, user, query, fragment, percent-encoding, "." or ".." segments, backslashes, spaces or control characters.`
  );
}

/** What a lenient URL parser makes of `url`, when that is a canonical key URL with the same host, port and path. */
function canonicalSpelling(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "https:" || parsed.port || parsed.username || parsed.password || parsed.search || parsed.hash) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(parsed.pathname);
  } catch {
    return undefined;
  }
  const candidate = `https://${parsed.hostname}${path}`;
  return parseKeyUrl(candidate) ? candidate : undefined;
}

/** Every key URL a request body names, and where. */
export function requestedKeyUrls(body: unknown): Array<{ path: string; url: string }> {
  const found: Array<{ path: string; url: string }> = [];
  if (typeof body !== "object" || body === null) return found;
  const { keyEncryptionKeyUrl, keyUrl, options } = body as { keyEncryptionKeyUrl?: unknown; keyUrl?: unknown; options?: { keyEncryptionKeyUrl?: unknown } };
  if (typeof keyEncryptionKeyUrl === "string") found.push({ path: "/body/keyEncryptionKeyUrl", url: keyEncryptionKeyUrl });
  // A fleet rotation's key, versionless.
  if (typeof keyUrl === "string") found.push({ path: "/body/keyUrl", url: keyUrl });
  if (typeof options?.keyEncryptionKeyUrl === "string") found.push({ path: "/body/options/keyEncryptionKeyUrl", url: options.keyEncryptionKeyUrl });
  return found;
}

/** One field error per key URL of `body` that is not in canonical form. */
export function keyUrlFormErrors(body: unknown, suffixes: readonly string[]): Array<{ path: string; message: string }> {
  return requestedKeyUrls(body).flatMap(({ path, url }) => {
    const message = keyUrlFormProblem(url, suffixes);
    return message ? [{ path, message }] : [];
  });
}
