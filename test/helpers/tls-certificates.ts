import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCertificateAuthority, issueServerCertificate, type CertificateAuthority } from "../../src/sandbox/certificates.js";
import type { TlsFiles } from "./redis-server.js";

export { createCertificateAuthority };

/**
 * A server certificate for `names`, signed by `ca`, written to `dir` as `<label>-cert.pem` and
 * `<label>-key.pem` beside `<label>-ca.pem` (the CA's certificate), for a TLS listener of a test's own.
 */
export async function writeServerCertificate(
  dir: string,
  label: string,
  ca: CertificateAuthority,
  names: { dnsNames?: string[]; ipAddresses?: string[]; clientAuth?: boolean },
): Promise<TlsFiles> {
  const certificate = await issueServerCertificate(ca, { dnsNames: names.dnsNames ?? [], ipAddresses: names.ipAddresses ?? [], clientAuth: names.clientAuth ?? false });
  const files = { certFile: join(dir, `${label}-cert.pem`), keyFile: join(dir, `${label}-key.pem`), caFile: join(dir, `${label}-ca.pem`) };
  await Promise.all([writeFile(files.certFile, certificate.certPem), writeFile(files.keyFile, certificate.keyPem, { mode: 0o600 }), writeFile(files.caFile, ca.certPem)]);
  return files;
}
