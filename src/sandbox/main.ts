import { resolve } from "node:path";
import { seed, startSandbox } from "./index.js";

/** `npm run sandbox`: the emulator on its own. */

function integerFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got '${raw}'`);
  return value;
}

const caFile = resolve(process.env.CMK_SANDBOX_CA_FILE || ".sandbox/ca.pem");
const sandbox = await startSandbox({
  port: integerFromEnv("CMK_SANDBOX_PORT", 8443),
  caFile,
  lroMs: integerFromEnv("CMK_SANDBOX_LRO_MS", 3000),
  logger: { info: () => {}, warn: (message) => console.warn(message) },
});

console.log(`Azure sandbox listening on ${sandbox.url}`);
console.log(`CA certificate: ${caFile}`);
console.log(`Tenant ${seed.TENANT_ID}, subscriptions ${seed.SUBSCRIPTION_IDS.join(", ")}, service client id ${seed.SERVICE_APP.clientId}`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping the sandbox`);
    sandbox.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
