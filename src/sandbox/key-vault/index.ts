import { identifyCaller, type Caller } from "../caller.js";
import { faultRetryHeaders } from "../faults.js";
import { withHeaders } from "../http/responses.js";
import { Router } from "../http/router.js";
import type { RouteParams, SandboxRequest, SandboxResponse } from "../http/types.js";
import { keyScope } from "../key-access.js";
import { findGrant } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { lower, type VaultRecord } from "../world.js";
import { defaultKeyVaultErrorCode, kvError } from "./errors.js";
import { registerKeyRoutes, type KeyVaultRequest } from "./keys.js";

/**
 * Key Vault data plane front door (azure-contracts.md 3–4; SUMMARY.md 2): the vault from the host
 * name, the challenge (401 before the body is looked at, because the SDK's first request has its
 * body stripped), token checks, faults, the vault firewall, then RBAC per operation.
 */

export const KEY_VAULT_HOST_SUFFIXES = [".vault.azure.net", ".managedhsm.azure.net"];
const VAULT_AUDIENCES = ["https://vault.azure.net"];

type KeyHandler = (request: KeyVaultRequest, params: RouteParams) => SandboxResponse | Promise<SandboxResponse>;

function vaultNameOf(host: string): string {
  return host.split(".")[0] ?? "";
}

function vaultScope(vault: VaultRecord): string {
  return `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}`;
}

function callerLabel(caller: Caller): string {
  return `appid=${caller.appId};oid=${caller.objectId};iss=${caller.issuer}`;
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

export function createKeyVaultHandler(runtime: SandboxRuntime): (request: SandboxRequest) => Promise<SandboxResponse> {
  const router = new Router<KeyVaultRequest>();
  registerKeyRoutes((method, pattern, dataAction, handler: KeyHandler) => {
    router.on(method, pattern, async (request, params) => {
      const scope = params.name ? keyScope(request.vault, params.name) : vaultScope(request.vault);
      const grant = findGrant(runtime.world, request.caller.objectId, scope, { dataAction });
      if (!grant) {
        return kvError(
          403,
          "Forbidden",
          `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: ${callerLabel(request.caller)}\r\nAction: '${dataAction}'\r\nResource: '${scope.toLowerCase()}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: ${request.vault.name};location=${request.vault.location}\r\n`,
          "ForbiddenByRbac",
        );
      }
      return withHeaders(await handler(request, params), {
        "x-ms-keyvault-rbac-assignment-id": grant.name,
        "x-ms-keyvault-rbac-cache": "ra_age=10;da_age=10;rd_age=10;brd_age=10;ra_notif_age=10;dec_lev=1;",
      });
    });
  });

  const challenge = {
    "WWW-Authenticate": `Bearer authorization="https://login.microsoftonline.com/${runtime.world.tenantId}", resource="https://vault.azure.net"`,
  };

  async function dispatch(request: SandboxRequest, vault: VaultRecord | undefined): Promise<SandboxResponse> {
    const check = identifyCaller(runtime, request, VAULT_AUDIENCES);
    if (!check.ok) {
      const messages: Record<string, string> = {
        missing: "AKV10000: Request is missing a Bearer or PoP token.",
        expired: "AKV10022: Invalid token: the token has expired.",
        audience: `AKV10022: Invalid audience. Expected https://vault.azure.net, found: ${String(check.claims?.aud)}.`,
      };
      return kvError(401, "Unauthorized", messages[check.reason] ?? "AKV10032: Invalid token.", undefined, challenge);
    }
    const { caller } = check;
    if (!vault) return kvError(404, "VaultNotFound", `The vault '${vaultNameOf(request.host)}' does not exist in the sandbox.`);
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

    const match = router.match(request.method, request.path);
    if (!match) return kvError(404, "NotFound", `The path '${request.path}' is not supported by the sandbox Key Vault.`);
    if ("methodNotAllowed" in match) return kvError(405, "MethodNotAllowed", `The method '${request.method}' is not supported on '${request.path}'.`);
    return match.handler({ ...request, caller, vault, apiVersion, nowSeconds: runtime.clock.nowSeconds() }, match.params);
  }

  return async (request) => {
    const vault = request.host.endsWith(".vault.azure.net") ? runtime.world.vaults.get(lower(vaultNameOf(request.host))) : undefined;
    return withHeaders(await dispatch(request, vault), keyVaultHeaders(request, vault));
  };
}
