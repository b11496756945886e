import { constants, createHash, privateDecrypt, privateEncrypt, publicDecrypt, publicEncrypt, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";

/**
 * The RSA algorithms of the Key Vault keys data plane, with the version's real key: encrypt/decrypt and
 * wrapKey/unwrapKey (RSA-OAEP, RSA-OAEP-256, RSA1_5) and sign/verify over a digest the caller computed
 * (RS256/384/512: PKCS #1 v1.5; PS256/384/512: PSS with a salt as long as the hash, as Key Vault signs).
 * Node signs only data it hashes itself, so the digest is padded here (RFC 8017 9.1 and 9.2) and put
 * through the raw RSA operation.
 */

export class RsaOperationError extends Error {}

export const ENCRYPTION_ALGORITHMS = ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"] as const;
export const SIGNATURE_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] as const;

function encryptionPadding(alg: string): { padding: number; oaepHash?: string } {
  if (alg === "RSA-OAEP") return { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" };
  if (alg === "RSA-OAEP-256") return { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" };
  if (alg === "RSA1_5") return { padding: constants.RSA_PKCS1_PADDING };
  throw new RsaOperationError(`The algorithm '${alg}' is not supported; use ${ENCRYPTION_ALGORITHMS.join(", ")}.`);
}

/** encrypt and wrapKey: the public key does it (so a client may do it locally, as the SDK does). */
export function rsaEncrypt(publicKey: KeyObject, alg: string, plaintext: Buffer): Buffer {
  const padding = encryptionPadding(alg);
  try {
    return publicEncrypt({ key: publicKey, ...padding }, plaintext);
  } catch {
    throw new RsaOperationError(`The value is too long for algorithm ${alg} with this key.`);
  }
}

/**
 * decrypt and unwrapKey. Node refuses PKCS #1 v1.5 decryption since the Marvin attack fix
 * (CVE-2023-46809), so RSA1_5 is the raw RSA operation with the padding (RFC 8017 7.2.2) removed here:
 * an emulator's key guards nothing.
 */
export function rsaDecrypt(privateKey: KeyObject, alg: string, ciphertext: Buffer): Buffer {
  const padding = encryptionPadding(alg);
  try {
    if (padding.padding !== constants.RSA_PKCS1_PADDING) return privateDecrypt({ key: privateKey, ...padding }, ciphertext);
    const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
    const separator = em.indexOf(0, 2);
    if (em[0] !== 0 || em[1] !== 2 || separator < 10) throw new Error("not PKCS #1 v1.5 type 2");
    return em.subarray(separator + 1);
  } catch {
    throw new RsaOperationError(`The value is not valid for algorithm ${alg} with this key.`);
  }
}

/** DER prefixes of DigestInfo (RFC 8017 9.2, note 1). */
const DIGEST_INFO: Record<string, Buffer> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha384: Buffer.from("3041300d060960864801650304020205000430", "hex"),
  sha512: Buffer.from("3051300d060960864801650304020305000440", "hex"),
};

function signatureScheme(alg: string): { pss: boolean; hash: "sha256" | "sha384" | "sha512"; length: number } {
  const match = /^(RS|PS)(256|384|512)$/.exec(alg);
  if (!match) throw new RsaOperationError(`The algorithm '${alg}' is not supported; use ${SIGNATURE_ALGORITHMS.join(", ")}.`);
  const bits = Number(match[2]);
  return { pss: match[1] === "PS", hash: `sha${bits}` as "sha256" | "sha384" | "sha512", length: bits / 8 };
}

function mgf1(hash: string, seed: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * seed.length < length + seed.length; counter += 1) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((byte, index) => byte ^ (b[index] ?? 0)));
}

/** EMSA-PSS-ENCODE (RFC 8017 9.1.1) with a salt of the hash's length. */
function pssEncode(hash: string, digest: Buffer, modulusBits: number, salt: Buffer): Buffer {
  const emBits = modulusBits - 1;
  const emLength = Math.ceil(emBits / 8);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLength - salt.length - h.length - 2), Buffer.from([1]), salt]);
  const masked = xor(db, mgf1(hash, h, db.length));
  masked[0] = (masked[0] ?? 0) & (0xff >> (8 * emLength - emBits));
  return Buffer.concat([masked, h, Buffer.from([0xbc])]);
}

/** EMSA-PSS-VERIFY (RFC 8017 9.1.2), salt length = hash length. */
function pssMatches(hash: string, digest: Buffer, em: Buffer, modulusBits: number, hashLength: number): boolean {
  const emBits = modulusBits - 1;
  const emLength = Math.ceil(emBits / 8);
  const encoded = em.subarray(em.length - emLength);
  if (encoded.length < hashLength * 2 + 2 || encoded[encoded.length - 1] !== 0xbc) return false;
  const masked = encoded.subarray(0, emLength - hashLength - 1);
  const h = encoded.subarray(emLength - hashLength - 1, emLength - 1);
  const db = xor(masked, mgf1(hash, h, masked.length));
  db[0] = (db[0] ?? 0) & (0xff >> (8 * emLength - emBits));
  const separator = emLength - 2 * hashLength - 2;
  if (db.subarray(0, separator).some((byte) => byte !== 0) || db[separator] !== 1) return false;
  const salt = db.subarray(db.length - hashLength);
  const expected = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return timingSafeEqual(expected, h);
}

function checkDigest(alg: string, digest: Buffer, length: number): void {
  if (digest.length !== length) throw new RsaOperationError(`The digest for ${alg} must be ${length} bytes; got ${digest.length}.`);
}

/** sign: over the digest the caller sends. */
export function rsaSign(privateKey: KeyObject, alg: string, digest: Buffer): Buffer {
  const scheme = signatureScheme(alg);
  checkDigest(alg, digest, scheme.length);
  const modulusBits = privateKey.asymmetricKeyDetails?.modulusLength ?? 2048;
  if (!scheme.pss) return privateEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[scheme.hash]!, digest]));
  const em = pssEncode(scheme.hash, digest, modulusBits, randomBytes(scheme.length));
  const block = Buffer.concat([Buffer.alloc(Math.ceil(modulusBits / 8) - em.length), em]);
  return privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, block);
}

/** verify: whether `signature` signs `digest` with this key. */
export function rsaVerify(publicKey: KeyObject, alg: string, digest: Buffer, signature: Buffer): boolean {
  const scheme = signatureScheme(alg);
  checkDigest(alg, digest, scheme.length);
  const modulusBits = publicKey.asymmetricKeyDetails?.modulusLength ?? 2048;
  if (signature.length !== Math.ceil(modulusBits / 8)) return false;
  try {
    if (!scheme.pss) {
      const recovered = publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
      const expected = Buffer.concat([DIGEST_INFO[scheme.hash]!, digest]);
      return recovered.length === expected.length && timingSafeEqual(recovered, expected);
    }
    const em = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
    return pssMatches(scheme.hash, digest, em, modulusBits, scheme.length);
  } catch {
    return false;
  }
}
