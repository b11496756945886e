import { KeyVaultManagementClient, type ManagedHsm } from "@azure/arm-keyvault";
import { createEmptyPipeline, createHttpHeaders, createPipelineRequest, createDefaultHttpClient, RestError, type Pipeline } from "@azure/core-rest-pipeline";
import { keyVaultAuthenticationPolicy } from "@azure/keyvault-common";
import type { RoleAssignmentFacts, VaultFacts } from "../domain/checks/facts.js";
import type { AzureContext } from "./azure-context.js";
import { keepAnswers, perSubscription, readFact, withArmErrorMessage, type GatheredFact } from "./arm-facts.js";
import { createReadCache, type ReadCache } from "./read-cache.js";

/**
 * Managed HSMs: the resource through ARM (`Microsoft.KeyVault/managedHSMs`, for the vault checks) and the
 * HSM's local RBAC on its own data plane (for IdentityKeyAccess): role assignments and definitions at
 * `{hsm}/providers/Microsoft.Authorization/…` (rbac.json 7.5), behind the same challenge as its keys.
 */
export interface ManagedHsmsAdapter {
  /** The HSM a key URL names, looked for in the given subscriptions (the FHIR service's). */
  managedHsmFacts(name: string, subscriptionIds: string[]): Promise<GatheredFact<VaultFacts>>;
  /**
   * The principal's local role assignments on the HSM with their definitions' data actions. The list
   * and the definitions are asked for at once, while the principal may still be being read.
   */
  localRoleAssignments(hsmUrl: string, principalId: string | undefined | PromiseLike<string | undefined>): Promise<GatheredFact<RoleAssignmentFacts[]>>;
}

const API_VERSION = "7.5";

export function toManagedHsmFacts(hsm: ManagedHsm): VaultFacts {
  const properties = hsm.properties ?? {};
  const acls = properties.networkAcls;
  return {
    managedHsm: true,
    name: hsm.name ?? "",
    id: hsm.id ?? "",
    location: hsm.location ?? "",
    // Always on for a managed HSM, whatever the property says (azure-contracts 5.2).
    enableSoftDelete: true,
    enablePurgeProtection: properties.enablePurgeProtection ?? false,
    ...(properties.softDeleteRetentionInDays !== undefined ? { softDeleteRetentionInDays: properties.softDeleteRetentionInDays } : {}),
    // Local RBAC is the HSM's only data-plane permission model.
    enableRbacAuthorization: true,
    publicNetworkAccess: properties.publicNetworkAccess ?? "Enabled",
    ...(acls ? { networkAcls: { ...(acls.defaultAction ? { defaultAction: acls.defaultAction } : {}), ...(acls.bypass ? { bypass: acls.bypass } : {}) } } : {}),
  };
}

interface LocalAssignment {
  id?: string;
  properties?: { scope?: string; roleDefinitionId?: string; principalId?: string };
}

interface LocalDefinition {
  id?: string;
  properties?: { roleName?: string; permissions?: Array<{ dataActions?: string[]; notDataActions?: string[] }> };
}

export function createManagedHsmsAdapter(context: AzureContext, cache: ReadCache = createReadCache(0)): ManagedHsmsAdapter {
  const arm = perSubscription((subscriptionId) => new KeyVaultManagementClient(context.credential, subscriptionId, { ...context.clientOptions, endpoint: context.cloud.resourceManager }));
  const pipeline: Pipeline = createEmptyPipeline();
  pipeline.addPolicy(keyVaultAuthenticationPolicy(context.credential));
  const httpClient = context.clientOptions.httpClient ?? createDefaultHttpClient();

  /** Every page of a local RBAC list (`nextLink` followed as given). */
  async function listAll<T>(url: string): Promise<T[]> {
    const items: T[] = [];
    for (let next: string | null | undefined = url; next; ) {
      const request = createPipelineRequest({ url: next, method: "GET", headers: createHttpHeaders({ accept: "application/json" }) });
      const response = await pipeline.sendRequest(httpClient, request);
      const body = response.bodyAsText ? (JSON.parse(response.bodyAsText) as { value?: T[]; nextLink?: string | null; error?: { code?: string; message?: string } }) : {};
      if (response.status >= 400) {
        throw new RestError(body.error?.message ?? `HTTP ${response.status}`, { statusCode: response.status, ...(body.error?.code ? { code: body.error.code } : {}), request, response });
      }
      items.push(...(body.value ?? []));
      next = body.nextLink;
    }
    return items;
  }

  const base = (hsmUrl: string) => `${hsmUrl.replace(/\/+$/, "")}/providers/Microsoft.Authorization`;
  // Definitions hardly change: one list per HSM per process.
  const definitions = new Map<string, Promise<Map<string, { roleName?: string; dataActions: string[]; notDataActions: string[] }>>>();
  const definitionsOf = (hsmUrl: string) => {
    const key = hsmUrl.toLowerCase();
    let cached = definitions.get(key);
    if (!cached) {
      cached = listAll<LocalDefinition>(`${base(hsmUrl)}/roleDefinitions?api-version=${API_VERSION}`).then(
        (list) =>
          new Map(
            list.map((definition) => [
              (definition.id ?? "").split("/").pop()?.toLowerCase() ?? "",
              {
                ...(definition.properties?.roleName ? { roleName: definition.properties.roleName } : {}),
                dataActions: (definition.properties?.permissions ?? []).flatMap((permission) => permission.dataActions ?? []),
                notDataActions: (definition.properties?.permissions ?? []).flatMap((permission) => permission.notDataActions ?? []),
              },
            ]),
          ),
      );
      cached.catch(() => definitions.delete(key));
      definitions.set(key, cached);
    }
    return cached;
  };

  return {
    managedHsmFacts: (name, subscriptionIds) =>
      cache.read(
        `managedhsm:${name}:${subscriptionIds.join(",")}`.toLowerCase(),
        async () => {
          let last: GatheredFact<VaultFacts> = { status: "missing", detail: `no managed HSM named ${name} in the subscriptions searched` };
          for (const subscriptionId of subscriptionIds) {
            const fact = await readFact(() =>
              withArmErrorMessage(async (options) => {
                for await (const hsm of arm(subscriptionId).managedHsms.listBySubscription(options)) {
                  if (hsm.name?.toLowerCase() === name.toLowerCase()) return toManagedHsmFacts(hsm);
                }
                return undefined;
              }),
            );
            if (fact.status === "found") return fact;
            if (fact.status === "unreadable") last = fact;
          }
          return last;
        },
        keepAnswers,
      ),

    async localRoleAssignments(hsmUrl, principal) {
      if (principal === undefined) return { status: "missing", detail: "no principal to look up" };
      const listing = cache.read(
        `hsmroles:${hsmUrl}`.toLowerCase(),
        () => readFact(async () => (await Promise.all([listAll<LocalAssignment>(`${base(hsmUrl)}/roleAssignments?api-version=${API_VERSION}`), definitionsOf(hsmUrl)]))),
        keepAnswers,
      );
      const principalId = await principal;
      if (!principalId) return { status: "missing", detail: "no principal to look up" };
      const fact = await listing;
      if (fact.status !== "found") return fact;
      const [assignments, roles] = fact.value;
      const mine = assignments.filter((assignment) => assignment.properties?.principalId?.toLowerCase() === principalId.toLowerCase());
      return {
        status: "found",
        value: mine.map((assignment) => {
          const roleDefinitionId = assignment.properties?.roleDefinitionId ?? "";
          const role = roles.get(roleDefinitionId.split("/").pop()?.toLowerCase() ?? "");
          return { id: assignment.id ?? "", scope: assignment.properties?.scope ?? "/", roleDefinitionId, ...(role ?? { dataActions: [], notDataActions: [] }) };
        }),
      };
    },
  };
}
