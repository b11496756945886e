import { generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";

/**
 * RSA key pairs shared by every sandbox started in this process (the TLS server key, the token
 * signing key). Generating a 2048-bit key takes 0.3–1 s on a small machine; tests start many
 * sandboxes, so each purpose gets one key per process. Certificates and tokens are still new per start.
 */

const generateKeyPairAsync = promisify(generateKeyPair);
const keys = new Map<string, Promise<{ privateKey: KeyObject; publicKey: KeyObject }>>();

export function processRsaKey(purpose: string): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  let key = keys.get(purpose);
  if (!key) {
    key = generateKeyPairAsync("rsa", { modulusLength: 2048 });
    keys.set(purpose, key);
  }
  return key;
}
