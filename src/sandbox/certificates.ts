import { generateKeyPair, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import forge from "node-forge";
import { processRsaKey } from "./process-keys.js";

/**
 * The sandbox's private PKI: a CA kept on disk (so clients can trust it across restarts) and a server
 * certificate minted at every start for every host name the emulator answers to.
 */

const generateKeyPairAsync = promisify(generateKeyPair);

/** Host names the server certificate covers: the emulator's own address and the production names it stands in for. */
export const SERVER_DNS_NAMES = [
  "localhost",
  "management.azure.com",
  "login.microsoftonline.com",
  "*.vault.azure.net",
  "*.managedhsm.azure.net",
  "*.fhir.azurehealthcareapis.com",
];
export const SERVER_IP_ADDRESSES = ["127.0.0.1"];

export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

export interface ServerCertificate {
  certPem: string;
  keyPem: string;
}

/** `<dir>/ca.pem` → `<dir>/ca-key.pem`. */
export function caKeyFile(caFile: string): string {
  return caFile.endsWith(".pem") ? `${caFile.slice(0, -4)}-key.pem` : `${caFile}-key.pem`;
}

/*
 * RSA keys come from node:crypto (native, in the thread pool): node-forge's pure-JS key generation
 * takes seconds. Forge is only used to build and sign the X.509 structures.
 */

async function generateRsaKeyPem(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync("rsa", { modulusLength: 2048 });
  return privateKey.export({ type: "pkcs1", format: "pem" }) as string;
}

async function serverKeyPem(): Promise<string> {
  const { privateKey } = await processRsaKey("tls-server");
  return privateKey.export({ type: "pkcs1", format: "pem" }) as string;
}

function randomSerial(): string {
  // Positive: clear the top bit so DER does not read it as negative.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString("hex");
}

function certificateSkeleton(keyPem: string, years: number): { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey } {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = randomSerial();
  // TLS clients judge validity by their own clocks, so the wall clock, not the emulator clock; an hour back tolerates skew.
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(notBefore);
  notAfter.setFullYear(notAfter.getFullYear() + years);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  return { cert, key };
}

/** A new CA (also for tests that need a PKI of their own, e.g. a TLS Redis). */
export async function createCertificateAuthority(commonName = "cmk-service sandbox CA"): Promise<CertificateAuthority> {
  const keyPem = await generateRsaKeyPem();
  const { cert, key } = certificateSkeleton(keyPem, 10);
  const subject = [
    { name: "commonName", value: commonName },
    { name: "organizationName", value: "cmk-service sandbox" },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Reuses the CA at `caFile` (+ its key file) when both exist; otherwise creates and writes a new one. */
export async function loadOrCreateCertificateAuthority(caFile: string): Promise<CertificateAuthority> {
  const keyFile = caKeyFile(caFile);
  const [certPem, keyPem] = await Promise.all([readIfExists(caFile), readIfExists(keyFile)]);
  if (certPem && keyPem) return { certPem, keyPem };

  const ca = await createCertificateAuthority();
  await mkdir(dirname(caFile), { recursive: true });
  await writeFile(keyFile, ca.keyPem, { mode: 0o600 });
  await writeFile(caFile, ca.certPem, { mode: 0o644 });
  return ca;
}

/**
 * A fresh server certificate signed by `ca`, valid for one year (the key is shared in-process, see
 * process-keys.ts), for the emulator's names or the ones given; `clientAuth` lets it also be presented as
 * a client's (servers that connect to each other, such as a Redis Cluster's nodes over TLS).
 */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  names: { dnsNames: readonly string[]; ipAddresses: readonly string[]; clientAuth?: boolean } = { dnsNames: SERVER_DNS_NAMES, ipAddresses: SERVER_IP_ADDRESSES },
): Promise<ServerCertificate> {
  const keyPem = await serverKeyPem();
  const { cert } = certificateSkeleton(keyPem, 1);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  cert.setSubject([{ name: "commonName", value: "cmk-service sandbox" }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, ...(names.clientAuth ? { clientAuth: true } : {}) },
    {
      name: "subjectAltName",
      altNames: [
        ...names.dnsNames.map((value) => ({ type: 2, value })),
        ...names.ipAddresses.map((ip) => ({ type: 7, ip })),
      ],
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}
