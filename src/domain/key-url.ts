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
 * Splits a key URL into its parts without judging it (the checks do that). Returns undefined when it is
 * not an https URL of the shape `https://{host}/keys/{name}[/{version}]`.
 */
export function parseKeyUrl(url: string): KeyUrl | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "https:" || parsed.username || parsed.password || parsed.search || parsed.hash) return undefined;
  const segments = parsed.pathname.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  if (segments[0] !== "keys" || segments.length < 2 || segments.length > 3) return undefined;
  const keyName = segments[1]!;
  const version = segments[2];
  if (keyName === "") return undefined;
  const host = parsed.host.toLowerCase();
  return {
    url,
    vaultUrl: `https://${host}`,
    vaultName: parsed.hostname.split(".")[0]!.toLowerCase(),
    host,
    keyName,
    version: version === undefined || version === "" ? undefined : version,
  };
}

/** The versioned key id as Key Vault returns it in `kid`. */
export function formatKeyUrl(vaultUrl: string, keyName: string, version: string): string {
  return `${vaultUrl.replace(/\/+$/, "")}/keys/${keyName}/${version}`;
}
