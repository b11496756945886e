import { readFile } from "node:fs/promises";
import { seed, type RunningSandbox } from "../../src/sandbox/index.js";
import { sandboxRequest } from "./sandbox.js";

/**
 * The service identity holding only one of the roles in deploy/ (loaded from the repository, as an operator
 * would create it; the sandbox never reads deploy/), at the seed's two subscriptions or at the scopes given.
 */

export const SEED_SUBSCRIPTIONS = [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID].map((id) => `/subscriptions/${id}`);

export type RoleFile = Record<string, unknown> & { Name: string; Actions: string[]; DataActions: string[] };

export async function roleFile(name: "cmk-service-role" | "cmk-service-reader-role" = "cmk-service-role"): Promise<RoleFile> {
  const role = JSON.parse(await readFile(new URL(`../../deploy/${name}.json`, import.meta.url), "utf8")) as RoleFile;
  return { ...role, AssignableScopes: SEED_SUBSCRIPTIONS };
}

export async function scenario(sandbox: RunningSandbox, body: object): Promise<Record<string, unknown>> {
  const answer = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body });
  if (answer.status !== 200) throw new Error(`scenario ${JSON.stringify(body)}: ${answer.status} ${answer.text}`);
  return answer.json as Record<string, unknown>;
}

/**
 * Defines (or redefines, keeping its assignments) the role without the permissions in `without`, and the
 * first time makes it the service identity's only Azure role, assigned at `scopes`.
 */
export async function onlyRole(sandbox: RunningSandbox, options: { name?: "cmk-service-role" | "cmk-service-reader-role"; without?: string[]; scopes?: string[] } = {}): Promise<void> {
  const role = await roleFile(options.name);
  const without = options.without ?? [];
  const defined = await scenario(sandbox, {
    action: "defineRole",
    role: { ...role, Actions: role.Actions.filter((a) => !without.includes(a)), DataActions: role.DataActions.filter((a) => !without.includes(a)) },
  });
  if (defined.updated) return;
  const removed = await scenario(sandbox, { action: "removeRoleAssignments", principalId: seed.SERVICE_APP.objectId });
  if ((removed.removed as string[]).length === 0) throw new Error("the seed gave the service no role to take away");
  for (const scope of options.scopes ?? SEED_SUBSCRIPTIONS) await scenario(sandbox, { action: "addRoleAssignment", principalId: seed.SERVICE_APP.objectId, role: role.Name, scope });
}
