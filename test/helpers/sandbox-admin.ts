import type { RunningSandbox } from "../../src/sandbox/index.js";
import { sandboxRequest } from "./sandbox.js";

export interface LoggedRequest {
  seq: number;
  method: string;
  host: string;
  path: string;
  status: number;
}

/** The emulator's request log since `since` (exclusive). */
export async function sandboxRequests(sandbox: RunningSandbox, since = 0): Promise<LoggedRequest[]> {
  return (await sandboxRequest(sandbox, { path: `/_sandbox/requests?since=${since}` })).json as LoggedRequest[];
}

export async function lastSeq(sandbox: RunningSandbox): Promise<number> {
  return (await sandboxRequests(sandbox)).at(-1)?.seq ?? 0;
}

/** ARM writes (PUT) on one FHIR service, as the emulator answered them. */
export function fhirPuts(requests: LoggedRequest[], fhirService: string): LoggedRequest[] {
  return requests.filter((r) => r.method === "PUT" && r.path.toLowerCase().endsWith(`/fhirservices/${fhirService}`));
}

export async function setFaults(sandbox: RunningSandbox, body: object): Promise<void> {
  const response = await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/faults", body });
  if (response.status >= 300) throw new Error(`PUT /_sandbox/faults: ${response.status} ${response.text}`);
}

export async function sandboxState<T = Record<string, unknown>>(sandbox: RunningSandbox): Promise<T> {
  return (await sandboxRequest(sandbox, { path: "/_sandbox/state" })).json as T;
}

/** Moves the emulator's clock forward (`POST /_sandbox/clock`): operations, key dates and tokens age at once. */
export async function advanceClock(sandbox: RunningSandbox, seconds: number): Promise<string> {
  const response = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/clock", body: { advanceSeconds: seconds } });
  if (response.status !== 200) throw new Error(`POST /_sandbox/clock: ${response.status} ${response.text}`);
  return (response.json as { now: string }).now;
}
