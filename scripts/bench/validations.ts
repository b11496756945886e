import { createSandboxContext } from "../../src/azure/azure-context.js";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import { parseFhirServiceId } from "../../src/domain/arm-ids.js";
import { parseKeyUrl } from "../../src/domain/key-url.js";
import { percentile } from "./load.js";

export interface ValidationTimings {
  /** Simulated round trip per request to Azure. */
  roundTripMs: number;
  rounds: number;
  validation: { medianMs: number; p95Ms: number };
  /** Median of each single lookup a validation makes, timed alone through the same network path. */
  lookups: Record<string, number>;
  slowestLookupMs: number;
  sumOfLookupsMs: number;
}

async function time(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

/**
 * P4: `POST /v1/validations` of the service against the slowest single Azure lookup it needs, in the same
 * run and through the same (latency-adding) path to the emulator. The lookups run concurrently, so a
 * validation should cost about one lookup, not a chain or their sum. Sequential rounds, so each figure is
 * a latency, not a throughput.
 */
export async function measureValidations(options: {
  apiUrl: string;
  apiKey: string;
  /** The emulator as the API reaches it (through the latency proxy). */
  sandbox: { url: string; caPem: string };
  body: { fhirServiceId: string; keyEncryptionKeyUrl: string } & Record<string, unknown>;
  rounds: number;
  roundTripMs: number;
}): Promise<ValidationTimings> {
  const ref = parseFhirServiceId(options.body.fhirServiceId);
  const key = parseKeyUrl(options.body.keyEncryptionKeyUrl);
  if (!ref || !key) throw new Error("the validation body needs a FHIR service id and a key URL");
  const azure = createAzureAdapters(createSandboxContext(options.sandbox), { pollIntervalMs: 250 });
  const validate = async () => {
    const response = await fetch(`${options.apiUrl}/v1/validations`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": options.apiKey },
      body: JSON.stringify(options.body),
    });
    const report = (await response.json()) as { valid?: boolean };
    if (response.status !== 200 || !report.valid) throw new Error(`POST /v1/validations: ${response.status} ${JSON.stringify(report)}`);
  };
  const principalId = (await azure.fhirServices.get(ref))?.identity?.principalId;
  if (!principalId) throw new Error(`${ref.id} has no principal`);
  const lookups: Record<string, () => Promise<unknown>> = {
    "FHIR service GET (ARM)": () => azure.fhirServices.get(ref),
    "key GET (Key Vault)": () => azure.keyVault.keyFacts(key),
    "vault lookup (ARM list)": () => azure.vaults.vaultFacts(key.vaultName, [ref.subscriptionId]),
    "role assignments (ARM list)": () => azure.roleAssignments.forPrincipal(ref.subscriptionId, `/subscriptions/${ref.subscriptionId}`, principalId),
  };
  // Warm-up: tokens, TLS sessions, keep-alive connections, the role definition cache.
  for (let i = 0; i < 3; i += 1) await validate();
  for (const lookup of Object.values(lookups)) await lookup();

  const validations: number[] = [];
  for (let i = 0; i < options.rounds; i += 1) validations.push(await time(validate));
  const medians: Record<string, number> = {};
  for (const [name, lookup] of Object.entries(lookups)) {
    const samples: number[] = [];
    for (let i = 0; i < options.rounds; i += 1) samples.push(await time(lookup));
    medians[name] = percentile(samples, 0.5);
  }
  const values = Object.values(medians);
  return {
    roundTripMs: options.roundTripMs,
    rounds: options.rounds,
    validation: { medianMs: percentile(validations, 0.5), p95Ms: percentile(validations, 0.95) },
    lookups: medians,
    slowestLookupMs: Math.max(...values),
    sumOfLookupsMs: values.reduce((a, b) => a + b, 0),
  };
}
