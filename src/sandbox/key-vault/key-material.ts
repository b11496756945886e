import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

/**
 * Real key pairs behind the emulated Key Vault keys, so that wrapKey/unwrapKey and a client-side
 * RSA-OAEP wrap followed by a remote unwrap round-trip. Generating RSA keys is slow (hundreds of ms
 * for 2048 bits, seconds for 4096), so material is made on first use and seed keys are cached for the
 * life of the process (`reset` and later sandboxes reuse them) and, when a cache directory is given, on
 * disk: seed keys then keep their material across restarts, so data wrapped before a restart still unwraps.
 */

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeySpec {
  kty: string;
  keySize?: number;
  crv?: string;
}

export interface KeyMaterial {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Public JWK members: `n`/`e` for RSA, `crv`/`x`/`y` for EC (base64url, no padding). */
  publicJwk: Record<string, string>;
}

const NODE_CURVES: Record<string, string> = {
  "P-256": "prime256v1",
  "P-384": "secp384r1",
  "P-521": "secp521r1",
  "P-256K": "secp256k1",
};

export function isRsa(kty: string): boolean {
  return kty === "RSA" || kty === "RSA-HSM";
}

export function isEc(kty: string): boolean {
  return kty === "EC" || kty === "EC-HSM";
}

/** The material of a private key (generated, cached or imported). */
export function toMaterial(privateKey: KeyObject): KeyMaterial {
  const publicKey = createPublicKey(privateKey);
  const jwk = publicKey.export({ format: "jwk" });
  const publicJwk: Record<string, string> = {};
  for (const member of ["n", "e", "crv", "x", "y"] as const) {
    const value = jwk[member];
    if (typeof value === "string") publicJwk[member] = value;
  }
  return { privateKey, publicKey, publicJwk };
}

async function generate(spec: KeySpec): Promise<KeyMaterial> {
  const { privateKey } = isRsa(spec.kty)
    ? await generateKeyPairAsync("rsa", { modulusLength: spec.keySize ?? 2048 })
    : await generateKeyPairAsync("ec", { namedCurve: NODE_CURVES[spec.crv ?? "P-256"] ?? "prime256v1" });
  return toMaterial(privateKey);
}

function matchesSpec(key: KeyObject, spec: KeySpec): boolean {
  const details = key.asymmetricKeyDetails;
  if (isRsa(spec.kty)) return key.asymmetricKeyType === "rsa" && details?.modulusLength === (spec.keySize ?? 2048);
  return key.asymmetricKeyType === "ec" && details?.namedCurve === (NODE_CURVES[spec.crv ?? "P-256"] ?? "prime256v1");
}

/** Reads `<dir>/<name>.pem` if it holds a key of the right type, else generates one and stores it (atomically). */
async function loadOrGenerate(spec: KeySpec, dir: string, name: string): Promise<KeyMaterial> {
  const file = join(dir, `${name.replace(/[^a-zA-Z0-9-]/g, "_")}.pem`);
  try {
    const key = createPrivateKey(await readFile(file, "utf8"));
    if (matchesSpec(key, spec)) return toMaterial(key);
  } catch {
    // missing or unreadable: make a new one
  }
  const material = await generate(spec);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temporary = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(temporary, material.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    await rename(temporary, file);
  } catch {
    // The cache is an optimization; a read-only directory is not an error.
  }
  return material;
}

const seedCache = new Map<string, Promise<KeyMaterial>>();

export interface SeedKeyCache {
  /** Stable name of the key version, e.g. `kvsandbox/cmk-rsa-2048/0000…01`. */
  name: string;
  /** Directory for the on-disk cache; absent: memory only. */
  dir?: string;
}

/**
 * A lazy, memoized source of key material. With `seed` the material is shared process-wide (and on
 * disk when `seed.dir` is set); without it, every call to `lazyKeyMaterial` makes a new key.
 */
export function lazyKeyMaterial(spec: KeySpec, seed?: SeedKeyCache): () => Promise<KeyMaterial> {
  let pending: Promise<KeyMaterial> | undefined;
  return () => {
    if (pending) return pending;
    if (seed) {
      const memoryKey = `${seed.dir ?? ""}|${seed.name}`;
      const cached = seedCache.get(memoryKey) ?? (seed.dir ? loadOrGenerate(spec, seed.dir, seed.name) : generate(spec));
      seedCache.set(memoryKey, cached);
      pending = cached;
    } else {
      pending = generate(spec);
    }
    return pending;
  };
}
