import { randomUUID } from "node:crypto";
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import type { PermissionEntry } from "../domain/permissions.js";
import type { AzureContext } from "./azure-context.js";
import { perSubscription } from "./arm-facts.js";

/** The service's own principal, from the claims of its ARM token (never the token itself). */
export interface ServicePrincipalClaims {
  objectId?: string;
  appId?: string;
  tenantId?: string;
}

/** What the service's own identity may do, asked of ARM (the self-check). */
export interface PermissionsAdapter {
  /**
   * `Microsoft.Authorization/permissions` at a resource group or at a resource below one (its ARM id):
   * one entry per role assignment of the caller at or above it, every page followed.
   */
  at(scope: string): Promise<PermissionEntry[]>;
  /**
   * Whether the identity may read the subscription's long-running operation results (what every write
   * polls), probed with an operation id that does not exist: 404 means allowed, 403 refused.
   */
  canReadOperationResults(subscriptionId: string, location: string): Promise<boolean>;
  principal(): Promise<ServicePrincipalClaims>;
}

const SCOPE = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)(?:\/providers\/([^/]+)\/(.+))?$/i;

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

/** The payload claims of a JWT, or {} when it is not one (a credential may hand out opaque tokens). */
function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split(".")[1];
  if (!payload) return {};
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export function createPermissionsAdapter(context: AzureContext): PermissionsAdapter {
  const options = { ...context.clientOptions, endpoint: context.cloud.resourceManager };
  const authorization = perSubscription((subscriptionId) => new AuthorizationManagementClient(context.credential, subscriptionId, options));
  const healthcare = perSubscription((subscriptionId) => new HealthcareApisManagementClient(context.credential, subscriptionId, options));
  return {
    async at(scope) {
      const match = SCOPE.exec(scope.replace(/\/+$/, ""));
      if (!match) throw new Error(`not a resource group or resource id: ${scope}`);
      const [, subscriptionId = "", resourceGroup = "", namespace, typesAndNames] = match;
      const client = authorization(subscriptionId).permissions;
      let pages;
      if (!namespace || !typesAndNames) {
        pages = client.listForResourceGroup(resourceGroup);
      } else {
        // `{type}/{name}` pairs: the last is the resource, the ones before it its parent path.
        const segments = typesAndNames.split("/");
        const resourceName = segments.pop() ?? "";
        const resourceType = segments.pop() ?? "";
        pages = client.listForResource(resourceGroup, namespace, segments.join("/"), resourceType, resourceName);
      }
      const entries: PermissionEntry[] = [];
      for await (const entry of pages) entries.push(entry);
      return entries;
    },
    async canReadOperationResults(subscriptionId, location) {
      try {
        await healthcare(subscriptionId).operationResults.get(location, randomUUID());
        return true;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) return true;
        if (status === 403) return false;
        throw error;
      }
    },
    async principal() {
      const token = await context.credential.getToken(`${context.cloud.resourceManager}/.default`);
      const claims = token ? claimsOf(token.token) : {};
      const text = (name: string) => (typeof claims[name] === "string" ? (claims[name] as string) : undefined);
      const appId = text("appid") ?? text("azp");
      return {
        ...(text("oid") ? { objectId: text("oid") } : {}),
        ...(appId ? { appId } : {}),
        ...(text("tid") ? { tenantId: text("tid") } : {}),
      };
    },
  };
}
