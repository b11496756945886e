/** The size in bits of an RSA modulus given as base64url (JWK `n`), leading zero bytes ignored. */
export function rsaModulusBits(n: Uint8Array | string): number {
  const bytes = typeof n === "string" ? Buffer.from(n, "base64url") : Buffer.from(n);
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start += 1;
  if (start === bytes.length) return 0;
  const leading = bytes[start]!;
  return (bytes.length - start - 1) * 8 + (32 - Math.clz32(leading));
}
