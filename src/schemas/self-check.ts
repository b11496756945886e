import { Type, type Static } from "@sinclair/typebox";
import { PERMISSION_SCOPE_KINDS, SERVICE_OPERATIONS } from "../domain/permissions.js";
import { DateTime } from "./common.js";
import { SubscriptionId } from "./key-rotations.js";

/** `GET /v1/self-check`: what the service's own identity may do, per scope and per operation (src/services/self-check.ts). */

const Operation = Type.Union(
  SERVICE_OPERATIONS.map((operation) => Type.Literal(operation)),
  { description: "An operation of the service: a change request's (SetKey, with a user-assigned identity SetKeyUserAssigned, CreateService, RotateKey, RecoverKeyAccess), a fleet rotation, a compliance scan, or a validation." },
);

const ScopeKind = Type.Union(
  PERMISSION_SCOPE_KINDS.map((kind) => Type.Literal(kind)),
  { description: "What the scope is: a covered subscription, a FHIR workspace's resource group, a user-assigned identity, a key vault, a Managed HSM, or a Managed HSM key (its local RBAC)." },
);

const Status = Type.Union([Type.Literal("ok"), Type.Literal("missing"), Type.Literal("error")], {
  description: "ok: every permission needed here is granted; missing: some is not (see `missing` and `fix`); error: the scope could not be checked (see `error`).",
});

export const MissingPermission = Type.Object(
  {
    plane: Type.Union([Type.Literal("action"), Type.Literal("dataAction")], { description: "A control-plane action or a data action." }),
    permission: Type.String({ description: "The action as role definitions spell it." }),
    operations: Type.Array(Operation, { description: "The operations that cannot run without it." }),
  },
  { additionalProperties: false },
);

export const SelfCheckScope = Type.Object(
  {
    kind: ScopeKind,
    scope: Type.String({ description: "ARM id of the scope (a Managed HSM key: its key URL without version)." }),
    subscriptionId: Type.String({ description: "The subscription the scope is in, lower case." }),
    status: Status,
    granted: Type.Array(Type.String(), { description: "Permissions needed here that the identity has." }),
    missing: Type.Array(MissingPermission, { description: "Permissions needed here that it has not." }),
    fix: Type.Optional(Type.String({ description: "The Azure CLI command that grants what is missing." })),
    note: Type.Optional(Type.String({ description: "What was not judged here, and how to check it." })),
    error: Type.Optional(Type.String({ description: "Why the scope could not be checked." })),
  },
  { additionalProperties: false },
);

export const SelfCheckReport = Type.Object(
  {
    status: Type.Union([Type.Literal("ok"), Type.Literal("missing"), Type.Literal("incomplete")], {
      description: "ok: every operation can run everywhere checked; missing: some permission is missing; incomplete: nothing missing was found but some scope could not be checked.",
    }),
    checkedAt: DateTime("When the check ran."),
    cloud: Type.String({ description: "CMK_CLOUD." }),
    principal: Type.Object(
      {
        credential: Type.Optional(Type.String({ description: "The credential that gave the token, e.g. ManagedIdentityCredential (CMK_AZURE_CREDENTIAL)." })),
        objectId: Type.Optional(Type.String({ description: "Object id of the service's identity (the assignee of the fixes)." })),
        appId: Type.Optional(Type.String({ description: "Its application (client) id." })),
        tenantId: Type.Optional(Type.String()),
      },
      { additionalProperties: false, description: "The identity the service signs in as: the credential that answered, and its ARM token's claims." },
    ),
    subscriptions: Type.Array(
      Type.Object(
        {
          subscriptionId: SubscriptionId,
          status: Status,
          workspaces: Type.Integer({ minimum: 0, description: "Health Data Services workspaces listed." }),
          fhirServices: Type.Integer({ minimum: 0, description: "FHIR services listed in them." }),
        },
        { additionalProperties: false },
      ),
      { description: "The covered subscriptions (CMK_SUBSCRIPTIONS, else every one the identity can list; within the caller's allow-list)." },
    ),
    operations: Type.Array(
      Type.Object(
        {
          operation: Operation,
          status: Type.Union([Type.Literal("ok"), Type.Literal("missing"), Type.Literal("unknown")], { description: "unknown: nothing missing was found, but some scope could not be checked." }),
          missing: Type.Array(Type.String(), { description: "The missing permissions it needs, each once." }),
        },
        { additionalProperties: false },
      ),
    ),
    scopes: Type.Array(SelfCheckScope, { description: "Each scope checked, once: subscriptions, resource groups, identities, vaults, HSMs and HSM keys in use." }),
    fixes: Type.Array(Type.String(), { description: "Every distinct command that grants something missing." }),
  },
  { $id: "SelfCheckReport", additionalProperties: false },
);
export type SelfCheckReport = Static<typeof SelfCheckReport>;
export type SelfCheckScope = Static<typeof SelfCheckScope>;

export const selfCheckSchemas = [SelfCheckReport];
