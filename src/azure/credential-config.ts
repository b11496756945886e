import { readFileSync, statSync } from "node:fs";

/**
 * Which credential the service signs in to Azure with (CMK_AZURE_CREDENTIAL, CMK_MANAGED_IDENTITY and the
 * SDK's own AZURE_* variables), checked once at start so a deployment that cannot sign in stops with one
 * line naming the variable, instead of answering 503 from /readyz with a chain of SDK errors.
 */

export const AZURE_CREDENTIAL_KINDS = ["default", "managed-identity", "workload-identity", "environment"] as const;
export type AzureCredentialKind = (typeof AZURE_CREDENTIAL_KINDS)[number];
export const MANAGED_IDENTITY_KINDS = ["system", "user-assigned"] as const;
export type ManagedIdentityKind = (typeof MANAGED_IDENTITY_KINDS)[number];

/** What createServiceCredential builds; ids are read here once, so the credential never guesses later. */
export type AzureCredentialSettings =
  /** DefaultAzureCredential's chain; `managedIdentityClientId` undefined: system-assigned (or none). */
  | { kind: "default"; managedIdentityClientId: string | undefined; workload: WorkloadIdentitySettings | undefined }
  | { kind: "managed-identity"; clientId: string | undefined }
  | ({ kind: "workload-identity" } & WorkloadIdentitySettings)
  | { kind: "environment" };

export interface WorkloadIdentitySettings {
  tenantId: string;
  clientId: string;
  tokenFilePath: string;
}

export interface CredentialProblem {
  variable: string;
  message: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const READ_CLIENT_ID = "az identity show -g <resource group> -n <identity> --query clientId -o tsv";
const AKS_WEBHOOK =
  "the AKS workload identity webhook injects it into pods labelled azure.workload.identity/use=true whose service account is annotated azure.workload.identity/client-id=<client id>";

type Env = Record<string, string | undefined>;

/** `CMK_AZURE_CREDENTIAL` and `CMK_MANAGED_IDENTITY` as read, plus the SDK's AZURE_* variables from `env`. */
export function azureCredentialSettings(
  choice: { credential: AzureCredentialKind; managedIdentity: ManagedIdentityKind | undefined },
  env: Env,
): { settings: AzureCredentialSettings } | { problem: CredentialProblem } {
  const value = (name: string) => (env[name] === undefined || env[name]!.trim() === "" ? undefined : env[name]!.trim());
  const clientId = value("AZURE_CLIENT_ID");
  if (clientId !== undefined && !GUID.test(clientId)) {
    return problem("AZURE_CLIENT_ID", `must be a client (application) id, a GUID such as 00000000-0000-0000-0000-000000000000 (got ${JSON.stringify(clientId)}); for a managed identity: ${READ_CLIENT_ID}`);
  }
  if (choice.managedIdentity !== undefined && choice.credential !== "default" && choice.credential !== "managed-identity") {
    return problem("CMK_MANAGED_IDENTITY", `is only used with CMK_AZURE_CREDENTIAL=managed-identity or default (got CMK_AZURE_CREDENTIAL=${choice.credential}); unset it`);
  }
  if (choice.managedIdentity === "user-assigned" && clientId === undefined) {
    return problem("AZURE_CLIENT_ID", `must be the client id of the user-assigned identity (CMK_MANAGED_IDENTITY=user-assigned): ${READ_CLIENT_ID}`);
  }
  const managedIdentityClientId = choice.managedIdentity === "system" ? undefined : clientId;

  switch (choice.credential) {
    case "managed-identity":
      // Explicit: guessing system-assigned when AZURE_CLIENT_ID is missing would turn this start-up error into the endpoint's 400 at the first token.
      if (choice.managedIdentity === undefined) {
        return problem("CMK_MANAGED_IDENTITY", "must be set with CMK_AZURE_CREDENTIAL=managed-identity: system, or user-assigned (with AZURE_CLIENT_ID)");
      }
      return { settings: { kind: "managed-identity", clientId: managedIdentityClientId } };
    case "workload-identity": {
      const workload = workloadIdentitySettings(env, true);
      return "problem" in workload ? workload : { settings: { kind: "workload-identity", ...workload.settings } };
    }
    case "environment":
      return environmentProblem(env) ?? { settings: { kind: "environment" } };
    case "default": {
      // The chain tries workload identity when its file is set (AKS); a file that is named but missing is a mistake worth stopping for.
      const workload = value("AZURE_FEDERATED_TOKEN_FILE") === undefined ? undefined : workloadIdentitySettings(env, false);
      if (workload && "problem" in workload) return workload;
      return { settings: { kind: "default", managedIdentityClientId, workload: workload?.settings } };
    }
  }
}

/** AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE: each set, the file readable and not empty. */
function workloadIdentitySettings(env: Env, required: boolean): { settings: WorkloadIdentitySettings } | { problem: CredentialProblem } {
  const why = required ? "with CMK_AZURE_CREDENTIAL=workload-identity" : "for workload identity (AZURE_FEDERATED_TOKEN_FILE is set)";
  const missing = ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"].find((name) => !env[name]?.trim());
  if (missing) return problem(missing, `must be set ${why}: ${AKS_WEBHOOK}`);
  const tokenFilePath = env.AZURE_FEDERATED_TOKEN_FILE!.trim();
  const fileProblem = federatedTokenFileProblem(tokenFilePath);
  if (fileProblem) return problem("AZURE_FEDERATED_TOKEN_FILE", `${fileProblem}; ${AKS_WEBHOOK} (a projected service account token)`);
  return { settings: { tenantId: env.AZURE_TENANT_ID!.trim(), clientId: env.AZURE_CLIENT_ID!.trim(), tokenFilePath } };
}

/** Why the federated token file cannot be used, or undefined. Kubernetes rotates its content, so only its presence is checked. */
export function federatedTokenFileProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return `${path} is not a file`;
    if (readFileSync(path, "utf8").trim() === "") return `${path} is empty`;
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `${path} does not exist` : `cannot read ${path} (${code ?? (error as Error).message})`;
  }
}

/** EnvironmentCredential's variables: tenant, client and a secret or a certificate (the SDK's user/password variant is not offered). */
function environmentProblem(env: Env): { problem: CredentialProblem } | undefined {
  const how = "EnvironmentCredential signs in as an app registration with a client secret (AZURE_CLIENT_SECRET) or a certificate (AZURE_CLIENT_CERTIFICATE_PATH)";
  for (const name of ["AZURE_TENANT_ID", "AZURE_CLIENT_ID"]) {
    if (!env[name]?.trim()) return problem(name, `must be set with CMK_AZURE_CREDENTIAL=environment: ${how}`);
  }
  const secret = env.AZURE_CLIENT_SECRET?.trim();
  const certificate = env.AZURE_CLIENT_CERTIFICATE_PATH?.trim();
  if (!secret && !certificate) return problem("AZURE_CLIENT_SECRET", `or AZURE_CLIENT_CERTIFICATE_PATH must be set with CMK_AZURE_CREDENTIAL=environment: ${how}`);
  if (secret && certificate) return problem("AZURE_CLIENT_CERTIFICATE_PATH", "and AZURE_CLIENT_SECRET are both set: EnvironmentCredential would use the secret; unset one");
  if (certificate) {
    try {
      if (!statSync(certificate).isFile()) return problem("AZURE_CLIENT_CERTIFICATE_PATH", `${certificate} is not a file (a PEM or PFX file with the certificate and its private key)`);
    } catch {
      return problem("AZURE_CLIENT_CERTIFICATE_PATH", `${certificate} does not exist or cannot be read (a PEM or PFX file with the certificate and its private key)`);
    }
  }
  return undefined;
}

/** One line for the start-up log: the credential and the ids it uses (ids are not secrets). */
export function describeCredentialSettings(settings: AzureCredentialSettings): string {
  switch (settings.kind) {
    case "managed-identity":
      return settings.clientId ? `ManagedIdentityCredential (user-assigned, client id ${settings.clientId})` : "ManagedIdentityCredential (system-assigned)";
    case "workload-identity":
      return `WorkloadIdentityCredential (client id ${settings.clientId}, tenant ${settings.tenantId})`;
    case "environment":
      return "EnvironmentCredential";
    case "default":
      return `DefaultAzureCredential chain (managed identity: ${settings.managedIdentityClientId ? `user-assigned, client id ${settings.managedIdentityClientId}` : "system-assigned"}${settings.workload ? `; workload identity: client id ${settings.workload.clientId}` : ""})`;
  }
}

function problem(variable: string, message: string): { problem: CredentialProblem } {
  return { problem: { variable, message } };
}
