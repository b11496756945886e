import type { Router } from "../http/router.js";
import type { SandboxResponse } from "../http/types.js";
import type { SandboxRuntime } from "../runtime.js";
import { json } from "../http/responses.js";
import { armError } from "./errors.js";
import { pagedList } from "./paging.js";
import type { ArmRequest } from "./request.js";
import { checkSubscription } from "./scope.js";

/**
 * The resource providers this emulator serves, with their resource types and api-versions: what
 * `GET /subscriptions/{id}/providers[/{namespace}]` answers (the Azure CLI picks the api-version of
 * `az resource show --ids` from it) and what `GET /providers/{namespace}/operations` lists. The
 * api-versions are the ones the SDK clients, the recordings and the service's templates use; the
 * emulator answers any api-version with the same shapes.
 */

interface ServedType {
  resourceType: string;
  apiVersions: readonly string[];
  /** Regions where the type can be created; absent: a global type (no locations). */
  regional?: boolean;
  /** Tracked resources: tags and a location. */
  tracked?: boolean;
  /** Display name in the operations list, e.g. "Workspaces". */
  display: string;
  /** RBAC operations on the type: `read`, `write`, `delete`, or `<name>/action`. */
  operations: readonly string[];
  /** The type as operation names spell it, when that differs (resource groups: `subscriptions/resourceGroups`). */
  operationsType?: string;
  /** Key Vault keys' data-plane actions (isDataAction: true). */
  dataOperations?: readonly string[];
}

interface ServedProvider {
  namespace: string;
  display: string;
  resourceTypes: readonly ServedType[];
}

const CRUD = ["read", "write", "delete"] as const;
const READ = ["read"] as const;
/** Display names as ARM lists them; the seed's resources live in westus3 (and kveast in eastus). */
const REGIONS = ["West US 3", "East US"];

export const SERVED_PROVIDERS: readonly ServedProvider[] = [
  {
    namespace: "Microsoft.HealthcareApis",
    display: "Microsoft Healthcare APIs",
    resourceTypes: [
      { resourceType: "workspaces", apiVersions: ["2023-11-01", "2021-11-01"], regional: true, tracked: true, display: "Workspaces", operations: CRUD },
      { resourceType: "workspaces/fhirservices", apiVersions: ["2023-11-01", "2021-11-01"], regional: true, tracked: true, display: "FHIR services", operations: CRUD },
      { resourceType: "locations/operationresults", apiVersions: ["2023-11-01", "2021-11-01"], regional: true, display: "Operation results", operations: READ },
      { resourceType: "operations", apiVersions: ["2023-11-01", "2021-11-01"], display: "Operations", operations: READ },
    ],
  },
  {
    namespace: "Microsoft.KeyVault",
    display: "Microsoft Key Vault",
    resourceTypes: [
      { resourceType: "vaults", apiVersions: ["2026-02-01", "2023-07-01", "2023-02-01"], regional: true, tracked: true, display: "Key Vault", operations: CRUD },
      {
        resourceType: "vaults/keys",
        apiVersions: ["2026-02-01", "2023-07-01"],
        regional: true,
        display: "Keys",
        operations: ["read", "write"],
        dataOperations: ["read", "create/action", "update/action", "delete", "recover/action", "purge/action", "rotate/action", "encrypt/action", "decrypt/action", "sign/action", "verify/action", "wrap/action", "unwrap/action"],
      },
      // Read-only here: the seed's HSM is read through ARM; its keys and local RBAC live on its own data plane.
      { resourceType: "managedHSMs", apiVersions: ["2026-02-01", "2023-07-01"], regional: true, tracked: true, display: "Managed HSM", operations: READ },
      { resourceType: "operations", apiVersions: ["2026-02-01", "2023-07-01"], display: "Operations", operations: READ },
    ],
  },
  {
    namespace: "Microsoft.ManagedIdentity",
    display: "Managed Service Identity",
    resourceTypes: [
      { resourceType: "userAssignedIdentities", apiVersions: ["2024-11-30", "2023-01-31", "2022-01-31-preview"], regional: true, tracked: true, display: "User Assigned Identities", operations: [...CRUD, "assign/action"] },
      { resourceType: "identities", apiVersions: ["2024-11-30", "2023-01-31"], display: "Identities", operations: READ },
      { resourceType: "operations", apiVersions: ["2024-11-30", "2023-01-31"], display: "Operations", operations: READ },
    ],
  },
  {
    namespace: "Microsoft.Authorization",
    display: "Microsoft Authorization",
    resourceTypes: [
      { resourceType: "roleAssignments", apiVersions: ["2022-04-01"], display: "Role assignments", operations: CRUD },
      { resourceType: "roleDefinitions", apiVersions: ["2022-04-01"], display: "Role definitions", operations: ["read", "write"] },
      { resourceType: "permissions", apiVersions: ["2022-04-01"], display: "Permissions", operations: READ },
      { resourceType: "operations", apiVersions: ["2022-04-01"], display: "Operations", operations: READ },
    ],
  },
  // Served by the generic provider (generic-resources.ts) for cmk-service's own template (deploy/cmk-service.json);
  // api-versions from azure-rest-api-specs (ContainerApps stable 2025-01-01, RedisEnterprise stable 2025-04-01,
  // EventGrid stable 2025-02-15).
  {
    namespace: "Microsoft.App",
    display: "Microsoft Container Apps",
    resourceTypes: [
      { resourceType: "managedEnvironments", apiVersions: ["2025-01-01"], regional: true, tracked: true, display: "Managed environments", operations: CRUD },
      { resourceType: "containerApps", apiVersions: ["2025-01-01"], regional: true, tracked: true, display: "Container apps", operations: CRUD },
      { resourceType: "operations", apiVersions: ["2025-01-01"], display: "Operations", operations: READ },
    ],
  },
  {
    namespace: "Microsoft.Cache",
    display: "Microsoft Cache",
    resourceTypes: [
      { resourceType: "redisEnterprise", apiVersions: ["2025-04-01"], regional: true, tracked: true, display: "Redis Enterprise clusters", operations: CRUD },
      { resourceType: "redisEnterprise/databases", apiVersions: ["2025-04-01"], regional: true, display: "Redis Enterprise databases", operations: CRUD },
      { resourceType: "redisEnterprise/databases/accessPolicyAssignments", apiVersions: ["2025-04-01"], regional: true, display: "Access policy assignments", operations: CRUD },
      { resourceType: "operations", apiVersions: ["2025-04-01"], display: "Operations", operations: READ },
    ],
  },
  {
    namespace: "Microsoft.EventGrid",
    display: "Microsoft Event Grid",
    resourceTypes: [
      { resourceType: "systemTopics", apiVersions: ["2025-02-15"], regional: true, tracked: true, display: "System topics", operations: CRUD },
      { resourceType: "systemTopics/eventSubscriptions", apiVersions: ["2025-02-15"], regional: true, display: "System topic event subscriptions", operations: CRUD },
      { resourceType: "operations", apiVersions: ["2025-02-15"], display: "Operations", operations: READ },
    ],
  },
  {
    namespace: "Microsoft.Resources",
    display: "Microsoft Resources",
    resourceTypes: [
      { resourceType: "deployments", apiVersions: ["2026-06-01", "2025-04-01", "2022-09-01"], display: "Deployments", operations: ["read", "write", "validate/action"] },
      { resourceType: "deployments/operationStatuses", apiVersions: ["2026-06-01", "2025-04-01", "2022-09-01"], display: "Deployment operation statuses", operations: READ },
      { resourceType: "resourceGroups", operationsType: "subscriptions/resourceGroups", apiVersions: ["2025-04-01", "2022-09-01"], display: "Resource groups", operations: ["read", "write"] },
      { resourceType: "subscriptions", apiVersions: ["2022-12-01"], display: "Subscriptions", operations: READ },
      { resourceType: "subscriptions/resources", apiVersions: ["2025-04-01", "2022-09-01"], display: "Resources", operations: READ },
      { resourceType: "subscriptions/providers", apiVersions: ["2025-04-01", "2022-09-01"], display: "Resource providers", operations: READ },
      { resourceType: "tenants", apiVersions: ["2022-12-01"], display: "Tenants", operations: READ },
      { resourceType: "operations", apiVersions: ["2025-04-01", "2022-12-01"], display: "Operations", operations: READ },
    ],
  },
];

export function findProvider(namespace: string): ServedProvider | undefined {
  return SERVED_PROVIDERS.find((provider) => provider.namespace.toLowerCase() === namespace.toLowerCase());
}

/** The api-versions served for `Namespace/type[/child]`, newest first; undefined for a type not served. */
export function servedApiVersions(resourceType: string): readonly string[] | undefined {
  const [namespace = "", ...types] = resourceType.split("/");
  return findProvider(namespace)?.resourceTypes.find((type) => type.resourceType.toLowerCase() === types.join("/").toLowerCase())?.apiVersions;
}

function providerResource(provider: ServedProvider, subscriptionId: string | undefined): Record<string, unknown> {
  return {
    id: `${subscriptionId ? `/subscriptions/${subscriptionId}` : ""}/providers/${provider.namespace}`,
    namespace: provider.namespace,
    ...(subscriptionId ? { registrationState: "Registered", registrationPolicy: "RegistrationRequired" } : {}),
    resourceTypes: provider.resourceTypes.map((type) => ({
      resourceType: type.resourceType,
      locations: type.regional ? REGIONS : [],
      apiVersions: type.apiVersions,
      defaultApiVersion: type.apiVersions.find((version) => !version.endsWith("-preview")) ?? type.apiVersions[0],
      capabilities: type.tracked ? "SupportsTags, SupportsLocation" : "None",
    })),
  };
}

/**
 * `operations` of a provider as `OperationListResult` (common-types v5). Microsoft.Resources' and
 * Microsoft.ManagedIdentity's own shapes have only name and display (ManagedIdentity.json; the real list in
 * SUMMARY.md section 4's recording).
 */
function operationsOf(provider: ServedProvider): Record<string, unknown>[] {
  const full = provider.namespace !== "Microsoft.Resources" && provider.namespace !== "Microsoft.ManagedIdentity";
  const entry = (type: ServedType, operation: string, isDataAction: boolean) => {
    const verb = operation.replace(/\/action$/, "");
    const words = verb === "read" ? "Read" : verb === "write" ? "Create or update" : verb === "delete" ? "Delete" : verb.charAt(0).toUpperCase() + verb.slice(1);
    return {
      name: `${provider.namespace}/${type.operationsType ?? type.resourceType}/${operation}`,
      ...(full ? { isDataAction } : {}),
      display: { provider: provider.display, resource: type.display, operation: `${words} ${type.display.toLowerCase()}`, description: `${words} ${type.display.toLowerCase()}.` },
      ...(full ? { origin: "user,system" } : {}),
    };
  };
  return provider.resourceTypes.flatMap((type) => [
    ...type.operations.map((operation) => entry(type, operation, false)),
    ...(type.dataOperations ?? []).map((operation) => entry(type, operation, true)),
  ]);
}

const PAGE = { pageSize: 100 };

function unknownNamespace(namespace: string): SandboxResponse {
  return armError(404, "InvalidResourceNamespace", `The resource namespace '${namespace}' is invalid.`);
}

export function registerProviders(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const providers = (subscriptionId: string | undefined) => SERVED_PROVIDERS.map((provider) => providerResource(provider, subscriptionId));

  router.on("GET", "/providers", (request) => pagedList(request, providers(undefined), PAGE));
  router.on("GET", "/providers/{namespace}", (_request, params) => {
    const provider = findProvider(params.namespace ?? "");
    return provider ? json(200, providerResource(provider, undefined)) : unknownNamespace(params.namespace ?? "");
  });
  router.on("GET", "/subscriptions/{subscriptionId}/providers", (request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    return error ?? pagedList(request, providers(params.subscriptionId), PAGE);
  });
  router.on("GET", "/subscriptions/{subscriptionId}/providers/{namespace}", (_request, params) => {
    const error = checkSubscription(runtime.world, params.subscriptionId);
    if (error) return error;
    const provider = findProvider(params.namespace ?? "");
    return provider ? json(200, providerResource(provider, params.subscriptionId)) : unknownNamespace(params.namespace ?? "");
  });
  router.on("GET", "/providers/{namespace}/operations", (request, params) => {
    const provider = findProvider(params.namespace ?? "");
    return provider ? pagedList(request, operationsOf(provider), PAGE) : unknownNamespace(params.namespace ?? "");
  });
}
