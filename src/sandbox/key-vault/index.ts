import { identifyCaller } from "../caller.js";
import { faultRetryHeaders } from "../faults.js";
import { withHeaders } from "../http/responses.js";
import { Router, type RouteDescription } from "../http/router.js";
import type { RouteParams, SandboxRequest, SandboxResponse } from "../http/types.js";
import { keyScope } from "../key-access.js";
import { findLocalGrant, isManagedHsm } from "../managed-hsm-rbac.js";
import { findGrant } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { lower, type VaultRecord } from "../world.js";
import { callerLabel, defaultKeyVaultErrorCode, forbiddenByRbac, kvError, RBAC_CACHE_HEADER } from "./errors.js";
import { registerKeyRoutes, type DataActions, type KeyVaultRequest } from "./keys.js";
import { registerLocalRbacRoutes } from "./local-rbac.js";

/**
 * Key Vault and Managed HSM data plane front door (azure-contracts.md 3–5; SUMMARY.md 2): the vault or
 * HSM from the host name, the challenge (401 before the body is looked at, because the SDK's first
 * request has its body stripped; each kind names its own resource), token checks, faults, the
 * firewall, then RBAC per operation: Azure RBAC for a vault, the HSM's local RBAC for an HSM.
 */

const VAULT_SUFFIX = ".vault.azure.net";
const MANAGED_HSM_SUFFIX = ".managedhsm.azure.net";
export const KEY_VAULT_HOST_SUFFIXES = [VAULT_SUFFIX, MANAGED_HSM_SUFFIX];

/** The challenge resource and token audience of each kind (azure-contracts.md 5.3). */
const RESOURCES = { vault: "https://vault.azure.net", managedHsm: "https://managedhsm.azure.net" } as const;

type KeyHandler = (request: KeyVaultRequest, params: RouteParams) => SandboxResponse | Promise<SandboxResponse>;

function vaultNameOf(host: string): string {
  return host.split(".")[0] ?? "";
}

function vaultScope(vault: VaultRecord): string {
  return `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}`;
}

/** Who may do `actions` at the key (or the whole store): the vault's Azure RBAC, or the HSM's local RBAC. */
function authorize(runtime: SandboxRuntime, request: KeyVaultRequest, keyName: string | undefined, actions: DataActions): { assignment?: string; action: string; scope: string } {
  const { vault, caller } = request;
  if (isManagedHsm(vault)) {
    const scope = keyName ? `/keys/${keyName}` : "/keys";
    return { assignment: findLocalGrant(vault, caller.objectId, scope, actions.managedHsm)?.name, action: actions.managedHsm, scope };
  }
  const scope = keyName ? keyScope(vault, keyName) : vaultScope(vault);
  const assignment = findGrant(runtime.world, caller.objectId, scope, { dataAction: actions.vault })?.name;
  runtime.requestLog.recordCheck({ principalId: caller.objectId, kind: "dataAction", permission: actions.vault, scope, granted: assignment !== undefined });
  return { assignment, action: actions.vault, scope };
}


/** Headers on every Key Vault answer (note: no space in Strict-Transport-Security, unlike ARM). */
function keyVaultHeaders(request: SandboxRequest, vault: VaultRecord | undefined): Record<string, string> {
  return {
    "Cache-Control": "no-cache",
    Pragma: "no-cache",
    Expires: "-1",
    "Strict-Transport-Security": "max-age=31536000;includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "x-ms-keyvault-region": vault?.location ?? "westus3",
    "x-ms-keyvault-service-version": "1.9.2179.1",
    "x-ms-keyvault-network-info": `conn_type=Ipv4;addr=${request.remoteAddress.replace(/^::ffff:/, "")};act_addr_fam=InterNetwork;`,
  };
}

export interface KeyVaultService {
  handle(request: SandboxRequest): Promise<SandboxResponse>;
  /** What the data plane serves, vault and HSM alike. */
  routes: readonly RouteDescription[];
}

export function createKeyVaultService(runtime: SandboxRuntime): KeyVaultService {
  const router = new Router<KeyVaultRequest>();
  // First: `/keys/providers/Microsoft.Authorization/…` is a role assignment path, not a key's.
  registerLocalRbacRoutes(router);
  registerKeyRoutes((method, pattern, dataActions, handler: KeyHandler) => {
    router.on(method, pattern, async (request, params) => {
      const { assignment, action, scope } = authorize(runtime, request, params.name, dataActions);
      if (!assignment) return forbiddenByRbac(request.caller, request.vault, action, scope);
      return withHeaders(await handler(request, params), { "x-ms-keyvault-rbac-assignment-id": assignment, ...RBAC_CACHE_HEADER });
    });
  });

  async function dispatch(request: SandboxRequest, kind: keyof typeof RESOURCES, vault: VaultRecord | undefined): Promise<SandboxResponse> {
    const resource = RESOURCES[kind];
    const challenge = { "WWW-Authenticate": `Bearer authorization="https://login.microsoftonline.com/${runtime.world.tenantId}", resource="${resource}"` };
    const check = identifyCaller(runtime, request, [resource]);
    if (!check.ok) {
      const messages: Record<string, string> = {
        missing: "AKV10000: Request is missing a Bearer or PoP token.",
        expired: "AKV10022: Invalid token: the token has expired.",
        audience: `AKV10022: Invalid audience. Expected ${resource}, found: ${String(check.claims?.aud)}.`,
      };
      return kvError(401, "Unauthorized", messages[check.reason] ?? "AKV10032: Invalid token.", undefined, challenge);
    }
    const { caller } = check;
    if (!vault) {
      const what = kind === "vault" ? "vault" : "managed HSM";
      return kvError(404, kind === "vault" ? "VaultNotFound" : "ManagedHsmNotFound", `The ${what} '${vaultNameOf(request.host)}' does not exist in the sandbox.`);
    }
    const fault = runtime.faults.fire("keyvault", request, "response");
    if (fault) {
      const code = fault.errorCode ?? defaultKeyVaultErrorCode(fault.status);
      return kvError(fault.status, code, "The request failed because of a fault injected by the sandbox.", undefined, faultRetryHeaders(fault));
    }
    const apiVersion = request.query.get("api-version");
    if (!apiVersion) return kvError(400, "BadParameter", "The api-version query parameter is required.");

    // kvfirewall-style vaults: public access disabled (or default action Deny) and no trusted-service
    // bypass that applies to the caller. Nothing in the sandbox is a trusted Microsoft service.
    const firewallClosed = vault.publicNetworkAccess === "Disabled" || vault.networkAcls?.defaultAction === "Deny";
    if (firewallClosed) {
      const address = request.remoteAddress.replace(/^::ffff:/, "");
      return kvError(
        403,
        "Forbidden",
        `Client address is not authorized and caller is not a trusted service.\r\nClient address: ${address}\r\nCaller: ${callerLabel(caller)}\r\nVault: ${vault.name};location=${vault.location}`,
        "ForbiddenByFirewall",
      );
    }

    const keyVaultRequest: KeyVaultRequest = { ...request, caller, vault, apiVersion, nowSeconds: runtime.clock.nowSeconds(), events: runtime.events };
    const match = router.match(request.method, request.path);
    if (!match) return kvError(404, "NotFound", `The path '${request.path}' is not supported by the sandbox Key Vault.`);
    if ("methodNotAllowed" in match) return kvError(405, "MethodNotAllowed", `The method '${request.method}' is not supported on '${request.path}'.`);
    return match.handler(keyVaultRequest, match.params);
  }

  return {
    async handle(request) {
      const kind = request.host.endsWith(MANAGED_HSM_SUFFIX) ? "managedHsm" : "vault";
      const name = lower(vaultNameOf(request.host));
      const vault = kind === "vault" ? runtime.world.vaults.get(name) : runtime.world.managedHsms.get(name);
      return withHeaders(await dispatch(request, kind, vault), keyVaultHeaders(request, vault));
    },
    routes: router.describe(),
  };
}
