import type { AzureAdapters } from "../azure/adapters.js";
import { refusalReason } from "../azure/azure-errors.js";
import { coveredSubscriptions, type WorkspaceRef } from "../azure/discovery.js";
import type { FleetService } from "../domain/fleet-plan.js";
import { isManagedHsmKey, parseKeyUrl } from "../domain/key-url.js";
import {
  blockedOperations,
  judgeProbes,
  judgeScope,
  managedHsmRoleAssignmentCommand,
  PERMISSION_REQUIREMENTS,
  PERMISSION_SCOPE_KINDS,
  roleAssignmentCommand,
  SERVICE_OPERATIONS,
  type MissingPermission,
  type PermissionPlane,
  type PermissionScopeKind,
  type ScopeVerdict,
} from "../domain/permissions.js";
import type { SelfCheckReport, SelfCheckScope } from "../schemas/self-check.js";

/**
 * The permission self-check (`GET /v1/self-check`, `npm run self-check`): for each covered subscription,
 * the FHIR services found there and the identities and vaults they use, whether the service's own identity
 * may do what each operation needs. ARM says what the identity may do at a resource group or resource
 * (`Microsoft.Authorization/permissions`); the two subscription-level needs are probed with the requests
 * themselves; a Managed HSM's keys are judged from the HSM's local role assignments. Reads only, each scope
 * once, a few at a time, through the adapters' ARM pacing.
 */

type ScopeStatus = SelfCheckScope["status"];
type SelfCheckOperation = SelfCheckReport["operations"][number];
type SelfCheckSubscription = SelfCheckReport["subscriptions"][number];

export interface SelfCheckOptions {
  /** CMK_SUBSCRIPTIONS (lower case), else every subscription the identity can list. */
  configuredSubscriptions: readonly string[] | undefined;
  /** The caller's subscription allow-list, when it has one. */
  allowedSubscriptions?: readonly string[] | undefined;
  /** Permission reads in flight at once (ARM pacing applies to each). */
  concurrency?: number;
  now?: () => Date;
}

type Adapters = Pick<AzureAdapters, "cloud" | "discovery" | "permissions" | "vaults" | "managedHsms" | "signInStatus">;

/** Where a region is needed only to form a probe's URL (RBAC answers before the region is looked at). */
const PROBE_LOCATION = "eastus";
const PLACEHOLDER_PRINCIPAL = "<service principal object id>";

/** Why a read failed, for the report: what a 403 names as missing (refusalReason), else the code and message. */
function reasonOf(error: unknown): string {
  const reason = refusalReason(error);
  const status = statusOf(error);
  return status === 403 || status === 404 ? reason : `${reason}: ${String((error as Error)?.message ?? error).split("\n")[0]!.slice(0, 300)}`;
}

const subscriptionOf = (armId: string) => /^\/subscriptions\/([^/]+)/i.exec(armId)?.[1]?.toLowerCase();
const statusOf = (error: unknown) => (error as { statusCode?: number } | undefined)?.statusCode;

/** Runs `work` over `items`, at most `limit` at once, answers in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** What a subscription holds that the service works on: found by the same list calls a fleet makes. */
interface SubscriptionInventory {
  subscriptionId: string;
  workspaces: WorkspaceRef[];
  services: FleetService[];
  /** Refused or failed listings: the permission probe's answer or the reason. */
  listing: { granted?: boolean; error?: string };
}

export async function runSelfCheck(azure: Adapters, options: SelfCheckOptions): Promise<SelfCheckReport> {
  const concurrency = options.concurrency ?? 8;
  // Which credential answered (a chain's member), then who it signed in as.
  const signIn = await azure.signInStatus(30_000);
  if (!signIn.ok) throw new Error(`the service's credential${signIn.credential ? ` (${signIn.credential})` : ""} got no token: ${signIn.error ?? "unknown"}`);
  const principal = { ...(signIn.credential ? { credential: signIn.credential } : {}), ...(await azure.permissions.principal()) };
  const objectId = principal.objectId ?? PLACEHOLDER_PRINCIPAL;
  const subscriptions = await coveredSubscriptions(azure.discovery, undefined, options.configuredSubscriptions, options.allowedSubscriptions);
  const inventories = await mapLimited(subscriptions, concurrency, (subscriptionId) => inventory(azure, subscriptionId));
  const scopes: SelfCheckScope[] = [];
  const fixFor = (subscriptionId: string) => roleAssignmentCommand(objectId, `/subscriptions/${subscriptionId}`);

  // Subscription level: listing workspaces (done above) and reading operation results (probed).
  await mapLimited(inventories, concurrency, async (found) => {
    const probes = new Map<string, boolean>();
    const errors: string[] = [];
    if (found.listing.granted !== undefined) probes.set("Microsoft.HealthcareApis/workspaces/read", found.listing.granted);
    if (found.listing.error) errors.push(`listing workspaces: ${found.listing.error}`);
    try {
      const location = found.services.find((service) => service.location)?.location ?? PROBE_LOCATION;
      probes.set("Microsoft.HealthcareApis/locations/operationresults/read", await azure.permissions.canReadOperationResults(found.subscriptionId, location));
    } catch (error) {
      errors.push(`reading an operation result: ${reasonOf(error)}`);
    }
    scopes.push(scopeResult("subscription", `/subscriptions/${found.subscriptionId}`, found.subscriptionId, judgeProbes("subscription", probes), fixFor(found.subscriptionId), errors));
  });

  // Resource groups of the workspaces, the identities and keys the services use: each once.
  const resourceGroups = new Map<string, string>();
  const identities = new Map<string, string>();
  // Vaults and HSMs by name (a key URL names its vault, not the vault's subscription), with the keys in use.
  const stores = new Map<string, { subscriptionId: string; vaultUrl: string; vaultName: string; hsm: boolean; keyNames: Set<string> }>();
  for (const found of inventories) {
    for (const workspace of found.workspaces) {
      const id = `/subscriptions/${workspace.subscriptionId}/resourceGroups/${workspace.resourceGroup}`;
      resourceGroups.set(id.toLowerCase(), id);
    }
    for (const service of found.services) {
      for (const identityId of service.userAssignedIdentityIds ?? []) identities.set(identityId.toLowerCase(), identityId);
      const key = service.keyEncryptionKeyUrl ? parseKeyUrl(service.keyEncryptionKeyUrl) : undefined;
      if (!key) continue;
      const hsm = isManagedHsmKey(key);
      const name = `${hsm ? "hsm" : "vault"}:${key.vaultName}`.toLowerCase();
      const store = stores.get(name) ?? { subscriptionId: found.subscriptionId, vaultUrl: key.vaultUrl, vaultName: key.vaultName, hsm, keyNames: new Set<string>() };
      store.keyNames.add(key.keyName);
      stores.set(name, store);
    }
  }

  const listed = async (kind: PermissionScopeKind, id: string) => {
    const subscriptionId = subscriptionOf(id) ?? "";
    try {
      scopes.push(scopeResult(kind, id, subscriptionId, judgeScope(kind, await azure.permissions.at(id)), fixFor(subscriptionId)));
    } catch (error) {
      scopes.push(scopeResult(kind, id, subscriptionId, { granted: [], missing: [] }, undefined, [reasonOf(error)]));
    }
  };
  await mapLimited([...resourceGroups.values()], concurrency, (id) => listed("resourceGroup", id));
  await mapLimited([...identities.values()], concurrency, (id) => listed("userAssignedIdentity", id));

  // Each vault or HSM found once, by name, in the covered subscriptions (the first service's own first).
  const searchOrder = (first: string) => [first, ...subscriptions.filter((id) => id !== first)];
  await mapLimited([...stores.values()], concurrency, async (store) => {
    const kind: PermissionScopeKind = store.hsm ? "managedHsm" : "vault";
    const fact = store.hsm ? await azure.managedHsms.managedHsmFacts(store.vaultName, searchOrder(store.subscriptionId)) : await azure.vaults.vaultFacts(store.vaultName, searchOrder(store.subscriptionId));
    if (fact.status !== "found") {
      const refused = fact.status === "unreadable" && fact.cause === "permission";
      const missing = refused ? [missingOf(kind, store.hsm ? "Microsoft.KeyVault/managedHSMs/read" : "Microsoft.KeyVault/vaults/read")] : [];
      const error = refused ? [] : [`${store.vaultName}: ${fact.status === "unreadable" ? fact.reason : "not found in the covered subscriptions"}`];
      scopes.push(scopeResult(kind, store.vaultUrl, store.subscriptionId, { granted: [], missing }, fixFor(store.subscriptionId), error));
      return;
    }
    const vault = fact.value;
    const vaultSubscription = subscriptionOf(vault.id) ?? store.subscriptionId;
    try {
      const entries = await azure.permissions.at(vault.id);
      // On access policies a vault's keys do not answer to RBAC: its data actions are not judged from roles.
      const planes: PermissionPlane[] = vault.enableRbacAuthorization ? ["action", "dataAction"] : ["action"];
      const note = vault.enableRbacAuthorization
        ? undefined
        : `${vault.name} uses access policies, not Azure RBAC: the service's identity needs get, rotate and recover key permissions in them (az keyvault set-policy --name ${vault.name} --object-id ${objectId} --key-permissions get rotate recover)`;
      scopes.push(scopeResult(kind, vault.id, vaultSubscription, judgeScope(kind, entries, planes), fixFor(vaultSubscription), [], note));
    } catch (error) {
      scopes.push(scopeResult(kind, vault.id, vaultSubscription, { granted: [], missing: [] }, undefined, [reasonOf(error)]));
    }
    if (!store.hsm) return;
    // An HSM's keys answer to its local RBAC: its role assignments read once, judged for each key in use.
    const local = await azure.managedHsms.localRoleAssignments(store.vaultUrl, principal.objectId);
    for (const keyName of store.keyNames) {
      const scope = `${store.vaultUrl}/keys/${keyName}`;
      if (local.status === "unreadable") {
        scopes.push(scopeResult("managedHsmKey", scope, vaultSubscription, { granted: [], missing: [] }, undefined, [`local role assignments of ${store.vaultName}: ${local.reason}`]));
        continue;
      }
      const covering = local.status === "found" ? local.value.filter((assignment) => coversHsmKey(assignment.scope, keyName)) : [];
      scopes.push(scopeResult("managedHsmKey", scope, vaultSubscription, judgeScope("managedHsmKey", covering), managedHsmRoleAssignmentCommand(objectId, store.vaultName, keyName)));
    }
  });

  scopes.sort((a, b) => PERMISSION_SCOPE_KINDS.indexOf(a.kind) - PERMISSION_SCOPE_KINDS.indexOf(b.kind) || a.scope.localeCompare(b.scope));
  return {
    status: scopes.some((scope) => scope.status === "missing") ? "missing" : scopes.some((scope) => scope.status === "error") ? "incomplete" : "ok",
    checkedAt: (options.now?.() ?? new Date()).toISOString(),
    cloud: azure.cloud.name,
    principal,
    subscriptions: inventories.map((found): SelfCheckSubscription => {
      const own = scopes.filter((scope) => scope.subscriptionId.toLowerCase() === found.subscriptionId);
      return {
        subscriptionId: found.subscriptionId,
        status: own.some((scope) => scope.status === "missing") ? "missing" : own.some((scope) => scope.status === "error") ? "error" : "ok",
        workspaces: found.workspaces.length,
        fhirServices: found.services.length,
      };
    }),
    operations: operationsOf(scopes),
    scopes,
    fixes: [...new Set(scopes.flatMap((scope) => (scope.fix ? [scope.fix] : [])))],
  };
}


function missingOf(kind: PermissionScopeKind, permission: string): MissingPermission {
  const requirement = PERMISSION_REQUIREMENTS.find((entry) => entry.scope === kind && entry.permission === permission)!;
  return { plane: requirement.plane, permission, operations: [...requirement.operations] };
}

/** A Managed HSM local assignment at `/`, `/keys` or the key itself covers the key. */
function coversHsmKey(scope: string, keyName: string): boolean {
  const normalized = scope.toLowerCase().replace(/\/+$/, "");
  return normalized === "" || normalized === "/keys" || normalized === `/keys/${keyName.toLowerCase()}`;
}

function scopeResult(kind: PermissionScopeKind, scope: string, subscriptionId: string, verdict: ScopeVerdict, fix: string | undefined, errors: string[] = [], note?: string): SelfCheckScope {
  const status: ScopeStatus = verdict.missing.length > 0 ? "missing" : errors.length > 0 ? "error" : "ok";
  return {
    kind,
    scope,
    subscriptionId: subscriptionId.toLowerCase(),
    status,
    granted: verdict.granted,
    missing: verdict.missing,
    ...(verdict.missing.length > 0 && fix ? { fix } : {}),
    ...(note ? { note } : {}),
    ...(errors.length > 0 ? { error: errors.join("; ") } : {}),
  };
}

function operationsOf(scopes: readonly SelfCheckScope[]): SelfCheckOperation[] {
  const anyError = scopes.some((scope) => scope.status === "error");
  return SERVICE_OPERATIONS.map((operation) => {
    const missing = [...new Set(scopes.flatMap((scope) => scope.missing.filter((entry) => entry.operations.includes(operation)).map((entry) => entry.permission)))];
    const blocked = blockedOperations(scopes.flatMap((scope) => scope.missing)).includes(operation);
    return { operation, status: blocked ? "missing" : anyError ? "unknown" : "ok", missing };
  });
}

async function inventory(azure: Adapters, subscriptionId: string): Promise<SubscriptionInventory> {
  const found: SubscriptionInventory = { subscriptionId, workspaces: [], services: [], listing: {} };
  try {
    found.workspaces = await azure.discovery.workspaces(subscriptionId);
    found.listing.granted = true;
  } catch (error) {
    if (statusOf(error) === 403) found.listing.granted = false;
    else found.listing.error = reasonOf(error);
    return found;
  }
  for (const workspace of found.workspaces) {
    // A refused FHIR list is judged at the resource group (its permissions say which action is missing).
    found.services.push(...(await azure.discovery.fhirServices(workspace).catch(() => [])));
  }
  return found;
}

export interface SelfCheckService {
  /** Runs the check for the subscriptions the caller may see; concurrent calls for the same ones share one run. */
  run(allowedSubscriptions?: readonly string[]): Promise<SelfCheckReport>;
}

export function createSelfCheckService(azure: Adapters, configuredSubscriptions: readonly string[] | undefined): SelfCheckService {
  const running = new Map<string, Promise<SelfCheckReport>>();
  return {
    run(allowedSubscriptions) {
      const key = allowedSubscriptions ? [...allowedSubscriptions].map((id) => id.toLowerCase()).sort().join(",") : "*";
      let run = running.get(key);
      if (!run) {
        run = runSelfCheck(azure, { configuredSubscriptions, allowedSubscriptions }).finally(() => running.delete(key));
        running.set(key, run);
      }
      return run;
    },
  };
}
