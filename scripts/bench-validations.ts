/**
 * Benchmark (not a test): median time of POST /v1/validations against the sandbox, next to the median
 * of each single Azure lookup it makes. The lookups all go out at once (one round), so a validation
 * should cost about the slowest single lookup, not their sum.
 *
 * The in-process emulator answers in about a millisecond, so its CPU time dominates; a second run adds
 * a simulated network round trip (--rtt, default 40 ms, like a call to Azure from a nearby region) in
 * front of every request, which is what the concurrency saves in production.
 *
 *   npm run bench:validations [-- --rounds 30 --rtt 40]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { ClientSecretCredential } from "@azure/identity";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { SANDBOX_SIGN_IN, type AzureContext } from "../src/azure/azure-context.js";
import { AZURE_PUBLIC_CLOUD } from "../src/azure/cloud.js";
import { createSandboxHttpClient } from "../src/azure/sandbox-routing.js";
import { createAzureAdapters } from "../src/azure/adapters.js";
import { parseFhirServiceId } from "../src/domain/arm-ids.js";
import { parseKeyUrl } from "../src/domain/key-url.js";
import { sha256Hex } from "../src/plugins/app/authentication.js";
import { startSandbox } from "../src/sandbox/index.js";

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
};
const rounds = argument("--rounds", 30);
const rttMs = argument("--rtt", 40);
const FHIR = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys";
const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const p95 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * 0.95))]!;
async function time(action: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const dir = await mkdtemp(join(tmpdir(), "cmk-bench-"));
const sandbox = await startSandbox({ port: 0, caFile: join(dir, "ca.pem"), lroMs: 300 });
// The per-credential limits on routes that read Azure would stop the rounds after 60 a minute.
const config = loadConfig({
  LOG_LEVEL: "silent",
  CMK_QUEUE_PREFIX: `bench-${process.pid}`,
  CMK_SANDBOX_URL: sandbox.url,
  CMK_RATE_LIMIT_PER_MINUTE: "1000000",
  CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE: "1000000",
});
const body = { operation: "SetKey", fhirServiceId: FHIR, keyEncryptionKeyUrl: KEY, identity: { type: "SystemAssigned" } };
const ref = parseFhirServiceId(FHIR)!;
const key = parseKeyUrl(KEY)!;

/** The sandbox context of src/azure/azure-context.ts, with `latencyMs` added before every request. */
function context(latencyMs: number): AzureContext {
  const routed = createSandboxHttpClient({ sandboxUrl: sandbox.url, caPem: sandbox.caPem });
  const httpClient: HttpClient = {
    sendRequest: async (request) => {
      if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
      return routed.sendRequest(request);
    },
  };
  const credential = new ClientSecretCredential(SANDBOX_SIGN_IN.tenantId, SANDBOX_SIGN_IN.clientId, SANDBOX_SIGN_IN.clientSecret, {
    authorityHost: AZURE_PUBLIC_CLOUD.authorityHost,
    disableInstanceDiscovery: true,
    httpClient,
  });
  return { credential, cloud: AZURE_PUBLIC_CLOUD, clientOptions: { httpClient, userAgentOptions: { userAgentPrefix: "cmk-bench" } }, mode: "sandbox" };
}

async function run(latencyMs: number) {
  const azure = createAzureAdapters(context(latencyMs), { pollIntervalMs: 250 });
  const app = await buildApp(config, { apiKeys: [{ name: "bench", sha256: sha256Hex("bench-key"), roles: ["reader"] }], azure });
  await app.ready();
  const validate = async () => {
    const response = await app.inject({ method: "POST", url: "/v1/validations", payload: body, headers: { "x-api-key": "bench-key" } });
    if (response.statusCode !== 200 || !response.json().valid) throw new Error(`unexpected answer: ${response.body}`);
  };
  const principalId = (await azure.fhirServices.get(ref))!.identity!.principalId!;
  const lookups: Record<string, () => Promise<unknown>> = {
    "FHIR service GET (ARM)": () => azure.fhirServices.get(ref),
    "key GET (Key Vault)": () => azure.keyVault.keyFacts(key),
    "vault lookup (ARM list)": () => azure.vaults.vaultFacts(key.vaultName, [ref.subscriptionId]),
    "role assignments (ARM list)": () => azure.roleAssignments.forPrincipal(ref.subscriptionId, `/subscriptions/${ref.subscriptionId}`, principalId),
  };
  // Warm-up: tokens, TLS sessions, the role definition cache.
  for (let i = 0; i < 3; i += 1) await validate();
  for (const lookup of Object.values(lookups)) await lookup();

  const validations: number[] = [];
  for (let i = 0; i < rounds; i += 1) validations.push(await time(validate));
  const single: Record<string, number> = {};
  for (const [name, lookup] of Object.entries(lookups)) {
    const samples: number[] = [];
    for (let i = 0; i < rounds; i += 1) samples.push(await time(lookup));
    single[name] = median(samples);
  }
  await app.close();

  console.log(`\n${latencyMs ? `with ${latencyMs} ms simulated round trip per request` : "no added latency (in-process emulator)"}:`);
  console.log(`  POST /v1/validations         median ${median(validations).toFixed(1)} ms   p95 ${p95(validations).toFixed(1)} ms`);
  for (const [name, value] of Object.entries(single)) console.log(`  ${name.padEnd(28)} median ${value.toFixed(1)} ms`);
  const values = Object.values(single);
  console.log(`  slowest single lookup        ${Math.max(...values).toFixed(1)} ms; sum of all ${values.reduce((a, b) => a + b, 0).toFixed(1)} ms`);
}

console.log(`POST /v1/validations against the sandbox: ${rounds} sequential rounds, Node ${process.version}`);
await run(0);
if (rttMs > 0) await run(rttMs);
await sandbox.close();
await rm(dir, { recursive: true, force: true });
