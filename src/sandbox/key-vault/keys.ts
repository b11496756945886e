import type { Caller } from "../caller.js";
import { BodyParseError, empty, isRecord, json, jsonBody } from "../http/responses.js";
import type { RouteParams, SandboxRequest, SandboxResponse } from "../http/types.js";
import { newKeyVersion } from "../ids.js";
import { lower, type KeyRecord, type KeyVersionRecord, type RotationPolicyRecord, type VaultRecord } from "../world.js";
import { badParameter, deletedKeyNotFound, keyNotFound, kvError } from "./errors.js";
import { createPrivateKey, type JsonWebKey } from "node:crypto";
import type { EventGridEmulator } from "../events/event-grid.js";
import { isEc, isRsa, lazyKeyMaterial, toMaterial } from "./key-material.js";
import { rsaDecrypt, rsaEncrypt, RsaOperationError, rsaSign, rsaVerify } from "./rsa-operations.js";
import { currentVersion, DEFAULT_KEY_OPS, keyAttributes, keyId, recoverDeletedKey, softDeleteKey } from "./model.js";

/**
 * The Key Vault keys data plane (azure-contracts.md 3.2), for vaults and Managed HSMs alike: get, list,
 * create, rotate, update, delete, deleted-key get/list/recover/purge, rotation policy, and
 * wrapKey/unwrapKey, encrypt/decrypt, sign/verify with real RSA.
 */

export interface KeyVaultRequest extends SandboxRequest {
  caller: Caller;
  vault: VaultRecord;
  apiVersion: string;
  /** The emulator clock at the request, in Unix seconds. */
  nowSeconds: number;
  /** Where new key versions are announced (Event Grid's `KeyNewVersionCreated`). */
  events: Pick<EventGridEmulator, "keyVersionCreated">;
}

/**
 * The data action a route needs, as Azure RBAC names it for vaults and as Managed HSM local RBAC names
 * it (built-in-roles.md for Managed HSM; rbac.json 7.5 `DataAction`).
 */
export interface DataActions {
  vault: string;
  managedHsm: string;
}

/** Data actions each route needs, checked against the caller's role assignments before the handler runs. */
export type KeyRouteRegistrar = (
  method: string,
  pattern: string,
  dataActions: DataActions,
  handler: (request: KeyVaultRequest, params: RouteParams) => SandboxResponse | Promise<SandboxResponse>,
) => void;

const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const RSA_SIZES = [2048, 3072, 4096];
const CURVES = ["P-256", "P-384", "P-521", "P-256K"];
const KEY_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"];
const KEYS = "Microsoft.KeyVault/vaults/keys";
const HSM_KEYS = "Microsoft.KeyVault/managedHsm/keys";

const actions = (vault: string, managedHsm: string): DataActions => ({ vault: `${KEYS}/${vault}`, managedHsm: `${HSM_KEYS}/${managedHsm}` });
const READ = actions("read", "read/action");
// Deleted keys: the vault names are approximate (Crypto Officer's `keys/*` covers them); the HSM's are documented.
const READ_DELETED = actions("read", "deletedKeys/read/action");
const CRYPTO_ACTIONS = {
  wrapKey: actions("wrap/action", "wrap/action"),
  unwrapKey: actions("unwrap/action", "unwrap/action"),
  encrypt: actions("encrypt/action", "encrypt/action"),
  decrypt: actions("decrypt/action", "decrypt/action"),
  sign: actions("sign/action", "sign/action"),
  verify: actions("verify/action", "verify/action"),
} as const;

function vaultHost(request: KeyVaultRequest): string {
  return request.host;
}

async function keyBundle(request: KeyVaultRequest, key: KeyRecord, version: KeyVersionRecord): Promise<Record<string, unknown>> {
  const material = await version.material();
  const bundle: Record<string, unknown> = {
    key: { kid: keyId(vaultHost(request), key.name, version.version), kty: version.kty, key_ops: version.keyOps, ...material.publicJwk },
    attributes: keyAttributes(request.vault, version, request.apiVersion),
  };
  if (Object.keys(version.tags).length > 0) bundle.tags = version.tags;
  return bundle;
}

async function deletedKeyBundle(request: KeyVaultRequest, deleted: { key: KeyRecord; deletedDate: number; scheduledPurgeDate: number }): Promise<Record<string, unknown>> {
  return {
    recoveryId: `https://${vaultHost(request)}/deletedkeys/${deleted.key.name}`,
    deletedDate: deleted.deletedDate,
    scheduledPurgeDate: deleted.scheduledPurgeDate,
    ...(await keyBundle(request, deleted.key, currentVersion(deleted.key))),
  };
}

function findVersion(key: KeyRecord, version: string | undefined): KeyVersionRecord | undefined {
  return version ? key.versions.find((candidate) => candidate.version === lower(version)) : currentVersion(key);
}

function parseJson(request: KeyVaultRequest): { body: Record<string, unknown> } | { error: SandboxResponse } {
  let body: unknown;
  try {
    body = jsonBody(request) ?? {};
  } catch (error) {
    if (error instanceof BodyParseError) return { error: badParameter(`The request body is not valid JSON: ${error.message}`) };
    throw error;
  }
  return isRecord(body) ? { body } : { error: badParameter("The request body must be a JSON object.") };
}

type Attributes = Pick<KeyVersionRecord, "enabled" | "nbf" | "exp">;

/** Validates `attributes` / `key_ops` / `tags` of create and update bodies. */
function parseMutableFields(body: Record<string, unknown>): { attributes: Partial<Attributes>; keyOps?: string[]; tags?: Record<string, string> } | { error: SandboxResponse } {
  const attributes: Partial<Attributes> = {};
  if (body.attributes !== undefined) {
    if (!isRecord(body.attributes)) return { error: badParameter("'attributes' must be an object.") };
    const { enabled, nbf, exp } = body.attributes;
    if (enabled !== undefined) {
      if (typeof enabled !== "boolean") return { error: badParameter("'attributes.enabled' must be a boolean.") };
      attributes.enabled = enabled;
    }
    for (const [name, value] of [["nbf", nbf], ["exp", exp]] as const) {
      if (value === undefined || value === null) continue;
      if (typeof value !== "number" || !Number.isInteger(value)) return { error: badParameter(`'attributes.${name}' must be a Unix time in seconds.`) };
      attributes[name] = value;
    }
  }
  const result: { attributes: Partial<Attributes>; keyOps?: string[]; tags?: Record<string, string> } = { attributes };
  if (body.key_ops !== undefined) {
    if (!Array.isArray(body.key_ops) || body.key_ops.some((op) => !KEY_OPS.includes(op as string))) {
      return { error: badParameter(`'key_ops' must list operations from ${KEY_OPS.join(", ")}.`) };
    }
    result.keyOps = body.key_ops as string[];
  }
  if (body.tags !== undefined) {
    if (!isRecord(body.tags) || Object.values(body.tags).some((tag) => typeof tag !== "string")) return { error: badParameter("'tags' must map strings to strings.") };
    result.tags = body.tags as Record<string, string>;
  }
  return result;
}

/** ISO 8601 durations as rotation policies use them (`P30D`, `P1Y`, `P2M`, `PT12H`), in seconds. */
export function durationSeconds(duration: string): number | undefined {
  const match = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(duration);
  if (!match || duration === "P" || duration.endsWith("T")) return undefined;
  const [years, months, days, hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0)) as number[];
  return (((years ?? 0) * 365 + (months ?? 0) * 30 + (days ?? 0)) * 24 + (hours ?? 0)) * 3600 + (minutes ?? 0) * 60 + (seconds ?? 0);
}

function newVersion(template: Pick<KeyVersionRecord, "kty" | "keySize" | "crv" | "keyOps">, attributes: Partial<Attributes>, tags: Record<string, string>, now: number): KeyVersionRecord {
  const version: KeyVersionRecord = {
    version: newKeyVersion(),
    kty: template.kty,
    keyOps: [...template.keyOps],
    enabled: attributes.enabled ?? true,
    created: now,
    updated: now,
    tags,
    material: lazyKeyMaterial({ kty: template.kty, ...(template.keySize ? { keySize: template.keySize } : {}), ...(template.crv ? { crv: template.crv } : {}) }),
  };
  if (template.keySize !== undefined) version.keySize = template.keySize;
  if (template.crv !== undefined) version.crv = template.crv;
  if (attributes.nbf !== undefined) version.nbf = attributes.nbf;
  if (attributes.exp !== undefined) version.exp = attributes.exp;
  return version;
}

function addVersion(vault: VaultRecord, name: string, version: KeyVersionRecord): KeyRecord {
  const key = vault.keys.get(lower(name)) ?? { name, versions: [] };
  key.versions.push(version);
  vault.keys.set(lower(name), key);
  return key;
}

async function createKey(request: KeyVaultRequest, params: RouteParams): Promise<SandboxResponse> {
  const name = params.name ?? "";
  if (!KEY_NAME.test(name)) return badParameter(`The key name '${name}' is invalid: use 1-127 letters, digits and dashes.`);
  if (request.vault.deletedKeys.has(lower(name))) {
    return kvError(
      409,
      "Conflict",
      `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`,
      "ObjectIsDeletedButRecoverable",
    );
  }
  const parsed = parseJson(request);
  if ("error" in parsed) return parsed.error;
  const { body } = parsed;
  const kty = body.kty;
  if (typeof kty !== "string" || !(isRsa(kty) || isEc(kty))) return badParameter(`The key type '${String(kty)}' is not supported; use RSA, RSA-HSM, EC or EC-HSM.`);
  const fields = parseMutableFields(body);
  if ("error" in fields) return fields.error;
  const template: Pick<KeyVersionRecord, "kty" | "keySize" | "crv" | "keyOps"> = { kty, keyOps: fields.keyOps ?? (isRsa(kty) ? DEFAULT_KEY_OPS : ["sign", "verify"]) };
  if (isRsa(kty)) {
    const size = body.key_size ?? 2048;
    if (!RSA_SIZES.includes(size as number)) return badParameter(`The key size '${String(size)}' is not supported for RSA keys; use 2048, 3072 or 4096.`);
    template.keySize = size as number;
  } else {
    const curve = body.crv ?? "P-256";
    if (!CURVES.includes(curve as string)) return badParameter(`The curve '${String(curve)}' is not supported; use ${CURVES.join(", ")}.`);
    template.crv = curve as string;
  }
  const version = newVersion(template, fields.attributes, fields.tags ?? {}, request.nowSeconds);
  const key = addVersion(request.vault, name, version);
  request.events.keyVersionCreated(request.vault, key, version);
  return json(200, await keyBundle(request, key, version));
}

/**
 * Import (`PUT /keys/{name}`, keys.json `ImportKey`): `{ key: JsonWebKey with the private members, hsm?,
 * attributes?, tags? }` adds a version with that material (a new key, or a new version of an existing one).
 */
async function importKey(request: KeyVaultRequest, params: RouteParams): Promise<SandboxResponse> {
  const name = params.name ?? "";
  if (!KEY_NAME.test(name)) return badParameter(`The key name '${name}' is invalid: use 1-127 letters, digits and dashes.`);
  if (request.vault.deletedKeys.has(lower(name))) {
    return kvError(409, "Conflict", `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`, "ObjectIsDeletedButRecoverable");
  }
  const parsed = parseJson(request);
  if ("error" in parsed) return parsed.error;
  const { body } = parsed;
  if (!isRecord(body.key)) return badParameter("'key' is required: the JSON web key to import, private members included.");
  const jwk = body.key;
  const kty = jwk.kty;
  if (typeof kty !== "string" || !(isRsa(kty) || isEc(kty))) return badParameter(`The key type '${String(kty)}' is not supported; use RSA, RSA-HSM, EC or EC-HSM.`);
  if (body.hsm !== undefined && typeof body.hsm !== "boolean") return badParameter("'hsm' must be a boolean.");
  const fields = parseMutableFields({ ...body, ...(jwk.key_ops !== undefined ? { key_ops: jwk.key_ops } : {}) });
  if ("error" in fields) return fields.error;
  let privateKey;
  try {
    const { key_ops: _ops, kid: _kid, ...members } = jwk;
    privateKey = createPrivateKey({ key: { ...members, kty: isRsa(kty) ? "RSA" : "EC" } as JsonWebKey, format: "jwk" });
  } catch (error) {
    return badParameter(`The key could not be imported: ${(error as Error).message}`);
  }
  const details = privateKey.asymmetricKeyDetails ?? {};
  const storedKty = body.hsm === true ? (isRsa(kty) ? "RSA-HSM" : "EC-HSM") : kty.replace(/-HSM$/, "");
  const template: Pick<KeyVersionRecord, "kty" | "keySize" | "crv" | "keyOps"> = { kty: storedKty, keyOps: fields.keyOps ?? (isRsa(kty) ? DEFAULT_KEY_OPS : ["sign", "verify"]) };
  if (isRsa(kty)) {
    if (!RSA_SIZES.includes(details.modulusLength ?? 0)) return badParameter(`The RSA key size '${String(details.modulusLength)}' is not supported; use 2048, 3072 or 4096.`);
    template.keySize = details.modulusLength!;
  } else if (typeof jwk.crv === "string") {
    template.crv = jwk.crv;
  }
  const version = newVersion(template, fields.attributes, fields.tags ?? {}, request.nowSeconds);
  const material = Promise.resolve(toMaterial(privateKey));
  version.material = () => material;
  const key = addVersion(request.vault, name, version);
  request.events.keyVersionCreated(request.vault, key, version);
  return json(200, await keyBundle(request, key, version));
}

async function rotateKey(request: KeyVaultRequest, params: RouteParams): Promise<SandboxResponse> {
  const key = request.vault.keys.get(lower(params.name ?? ""));
  if (!key) return keyNotFound(params.name ?? "");
  const latest = currentVersion(key);
  const attributes: Partial<Attributes> = {};
  const expiresIn = key.rotationPolicy?.expiryTime ? durationSeconds(key.rotationPolicy.expiryTime) : undefined;
  if (expiresIn !== undefined) attributes.exp = request.nowSeconds + expiresIn;
  const version = newVersion(latest, attributes, { ...latest.tags }, request.nowSeconds);
  key.versions.push(version);
  request.events.keyVersionCreated(request.vault, key, version);
  return json(200, await keyBundle(request, key, version));
}

async function updateKey(request: KeyVaultRequest, params: RouteParams): Promise<SandboxResponse> {
  const key = request.vault.keys.get(lower(params.name ?? ""));
  const version = key ? findVersion(key, params.version) : undefined;
  if (!key || !version) return keyNotFound(params.name ?? "", params.version);
  const parsed = parseJson(request);
  if ("error" in parsed) return parsed.error;
  const fields = parseMutableFields(parsed.body);
  if ("error" in fields) return fields.error;
  if (fields.attributes.enabled !== undefined) version.enabled = fields.attributes.enabled;
  if (fields.attributes.nbf !== undefined) version.nbf = fields.attributes.nbf;
  if (fields.attributes.exp !== undefined) version.exp = fields.attributes.exp;
  if (fields.keyOps) version.keyOps = fields.keyOps;
  if (fields.tags) version.tags = fields.tags;
  version.updated = request.nowSeconds;
  return json(200, await keyBundle(request, key, version));
}

function rotationPolicyBody(request: KeyVaultRequest, key: KeyRecord): Record<string, unknown> {
  const id = `https://${vaultHost(request)}/keys/${key.name}/rotationpolicy`;
  const policy = key.rotationPolicy;
  // Without a policy the service reports its default: notify 30 days before expiry.
  if (!policy) return { id, lifetimeActions: [{ trigger: { timeBeforeExpiry: "P30D" }, action: { type: "Notify" } }], attributes: {} };
  const attributes: Record<string, unknown> = {};
  if (policy.expiryTime) attributes.expiryTime = policy.expiryTime;
  attributes.created = policy.created;
  attributes.updated = policy.updated;
  return { id, lifetimeActions: policy.lifetimeActions, attributes };
}

function putRotationPolicy(request: KeyVaultRequest, params: RouteParams): SandboxResponse {
  const key = request.vault.keys.get(lower(params.name ?? ""));
  if (!key) return keyNotFound(params.name ?? "");
  const parsed = parseJson(request);
  if ("error" in parsed) return parsed.error;
  const { body } = parsed;
  const lifetimeActions = body.lifetimeActions ?? [];
  if (!Array.isArray(lifetimeActions)) return badParameter("'lifetimeActions' must be an array.");
  const expiryTime = isRecord(body.attributes) ? body.attributes.expiryTime : undefined;
  if (expiryTime !== undefined) {
    const seconds = typeof expiryTime === "string" ? durationSeconds(expiryTime) : undefined;
    if (seconds === undefined || seconds < 28 * 86_400) return badParameter("'attributes.expiryTime' must be an ISO 8601 duration of at least 28 days.");
  }
  const now = request.nowSeconds;
  const policy: RotationPolicyRecord = { lifetimeActions, created: key.rotationPolicy?.created ?? now, updated: now };
  if (typeof expiryTime === "string") policy.expiryTime = expiryTime;
  key.rotationPolicy = policy;
  return json(200, rotationPolicyBody(request, key));
}

type CryptoOperation = keyof typeof CRYPTO_ACTIONS;

/** Why `operation` may not use this version now (disabled, outside nbf..exp, not in key_ops, not RSA), if it may not. */
function refuseOperation(request: KeyVaultRequest, version: KeyVersionRecord, operation: CryptoOperation, alg: string): SandboxResponse | undefined {
  const vaultLabel = `${request.vault.name};location=${request.vault.location}`;
  if (!version.enabled) return kvError(403, "Forbidden", `Operation ${operation} is not allowed on a disabled key.\r\nVault: ${vaultLabel}`, "KeyDisabled");
  const now = request.nowSeconds;
  if (version.exp !== undefined && version.exp <= now) return kvError(403, "Forbidden", `Operation ${operation} is not allowed on an expired key.\r\nVault: ${vaultLabel}`, "KeyExpired");
  if (version.nbf !== undefined && version.nbf > now) return kvError(403, "Forbidden", `Operation ${operation} is not allowed on a key that is not yet valid.\r\nVault: ${vaultLabel}`, "KeyNotYetValid");
  if (!version.keyOps.includes(operation)) return badParameter(`Operation ${operation} is not permitted on this key.`);
  if (!isRsa(version.kty)) return badParameter(`Algorithm ${alg} is not supported for key type ${version.kty}.`);
  return undefined;
}

/**
 * wrapKey/unwrapKey, encrypt/decrypt, sign/verify with the version's real key: `{alg, value}` (verify:
 * `{alg, digest, value}`) → `{kid, value}` (verify: `{value: boolean}`), after the same checks for all six.
 */
async function cryptoOperation(request: KeyVaultRequest, params: RouteParams, operation: CryptoOperation): Promise<SandboxResponse> {
  const key = request.vault.keys.get(lower(params.name ?? ""));
  const version = key ? findVersion(key, params.version) : undefined;
  if (!key || !version) return keyNotFound(params.name ?? "", params.version);
  const parsed = parseJson(request);
  if ("error" in parsed) return parsed.error;
  const { alg, value, digest } = parsed.body;
  if (typeof alg !== "string" || typeof value !== "string") return badParameter("'alg' and 'value' are required.");
  if (operation === "verify" && typeof digest !== "string") return badParameter("'digest' is required.");
  const refused = refuseOperation(request, version, operation, alg);
  if (refused) return refused;
  const material = await version.material();
  const input = Buffer.from(value, "base64url");
  try {
    if (operation === "verify") return json(200, { value: rsaVerify(material.publicKey, alg, Buffer.from(String(digest), "base64url"), input) });
    const output =
      operation === "wrapKey" || operation === "encrypt"
        ? rsaEncrypt(material.publicKey, alg, input)
        : operation === "sign"
          ? rsaSign(material.privateKey, alg, input)
          : rsaDecrypt(material.privateKey, alg, input);
    return json(200, { kid: keyId(vaultHost(request), key.name, version.version), value: output.toString("base64url") });
  } catch (error) {
    if (error instanceof RsaOperationError) return badParameter(`The ${operation} operation failed: ${error.message}`);
    throw error;
  }
}

export function registerKeyRoutes(on: KeyRouteRegistrar): void {
  on("GET", "/keys", READ, (request) => {
    const value = [...request.vault.keys.values()].map((key) => {
      const latest = currentVersion(key);
      return { kid: keyId(vaultHost(request), key.name), attributes: keyAttributes(request.vault, latest, request.apiVersion), ...(Object.keys(latest.tags).length ? { tags: latest.tags } : {}) };
    });
    return json(200, { value, nextLink: null });
  });

  on("GET", "/keys/{name}/versions", READ, (request, params) => {
    const key = request.vault.keys.get(lower(params.name ?? ""));
    if (!key) return keyNotFound(params.name ?? "");
    const value = key.versions.map((version) => ({ kid: keyId(vaultHost(request), key.name, version.version), attributes: keyAttributes(request.vault, version, request.apiVersion) }));
    return json(200, { value, nextLink: null });
  });

  on("POST", "/keys/{name}/create", actions("create/action", "create"), createKey);
  on("POST", "/keys/{name}/rotate", actions("rotate/action", "rotate/action"), rotateKey);
  on("PUT", "/keys/{name}", actions("import/action", "import/action"), importKey);

  // Managed HSM names no rotation-policy actions; reading and writing the key's stand in.
  on("GET", "/keys/{name}/rotationpolicy", { vault: "Microsoft.KeyVault/vaults/keyrotationpolicies/read", managedHsm: READ.managedHsm }, (request, params) => {
    const key = request.vault.keys.get(lower(params.name ?? ""));
    return key ? json(200, rotationPolicyBody(request, key)) : keyNotFound(params.name ?? "");
  });
  on("PUT", "/keys/{name}/rotationpolicy", { vault: "Microsoft.KeyVault/vaults/keyrotationpolicies/write", managedHsm: `${HSM_KEYS}/write/action` }, putRotationPolicy);

  // Get latest is `GET /keys/{name}/` (trailing slash) from the SDK; `/keys/{name}` is accepted too.
  const getKey = async (request: KeyVaultRequest, params: RouteParams) => {
    const key = request.vault.keys.get(lower(params.name ?? ""));
    const version = key ? findVersion(key, params.version) : undefined;
    if (!key || !version) return keyNotFound(params.name ?? "", params.version);
    return json(200, await keyBundle(request, key, version));
  };
  for (const pattern of ["/keys/{name}", "/keys/{name}/", "/keys/{name}/{version}"]) {
    on("GET", pattern, READ, getKey);
    on("PATCH", pattern, actions("update/action", "write/action"), updateKey);
  }

  for (const operation of Object.keys(CRYPTO_ACTIONS) as CryptoOperation[]) {
    const segment = operation.toLowerCase();
    const handler = (request: KeyVaultRequest, params: RouteParams) => cryptoOperation(request, params, operation);
    on("POST", `/keys/{name}/{version}/${segment}`, CRYPTO_ACTIONS[operation], handler);
    on("POST", `/keys/{name}//${segment}`, CRYPTO_ACTIONS[operation], handler);
  }

  on("DELETE", "/keys/{name}", actions("delete", "delete"), async (request, params) => {
    const deleted = softDeleteKey(request.vault, params.name ?? "", request.nowSeconds);
    return deleted ? json(200, await deletedKeyBundle(request, deleted)) : keyNotFound(params.name ?? "");
  });

  // Deleted keys. The data-action names for these are approximate (`keys/recover/action`, `keys/purge/action`).
  on("GET", "/deletedkeys", READ_DELETED, (request) => {
    const value = [...request.vault.deletedKeys.values()].map((deleted) => ({
      recoveryId: `https://${vaultHost(request)}/deletedkeys/${deleted.key.name}`,
      deletedDate: deleted.deletedDate,
      scheduledPurgeDate: deleted.scheduledPurgeDate,
      kid: keyId(vaultHost(request), deleted.key.name),
      attributes: keyAttributes(request.vault, currentVersion(deleted.key), request.apiVersion),
    }));
    return json(200, { value, nextLink: null });
  });
  on("GET", "/deletedkeys/{name}", READ_DELETED, async (request, params) => {
    const deleted = request.vault.deletedKeys.get(lower(params.name ?? ""));
    return deleted ? json(200, await deletedKeyBundle(request, deleted)) : deletedKeyNotFound(params.name ?? "");
  });
  on("POST", "/deletedkeys/{name}/recover", actions("recover/action", "deletedKeys/recover/action"), async (request, params) => {
    const name = params.name ?? "";
    if (request.vault.keys.has(lower(name)) && request.vault.deletedKeys.has(lower(name))) {
      return kvError(409, "Conflict", `Key ${name} already exists and cannot be recovered over.`);
    }
    const key = recoverDeletedKey(request.vault, name);
    return key ? json(200, await keyBundle(request, key, currentVersion(key))) : deletedKeyNotFound(name);
  });
  on("DELETE", "/deletedkeys/{name}", actions("purge/action", "deletedKeys/delete"), (request, params) => {
    const name = params.name ?? "";
    if (!request.vault.deletedKeys.has(lower(name))) return deletedKeyNotFound(name);
    if (request.vault.purgeProtection) {
      return kvError(
        403,
        "Forbidden",
        `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: ${request.vault.name};location=${request.vault.location}`,
        "PurgeProtectionEnabled",
      );
    }
    request.vault.deletedKeys.delete(lower(name));
    return empty(204);
  });
}
