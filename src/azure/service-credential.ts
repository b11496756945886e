import {
  AzureCliCredential,
  AzureDeveloperCliCredential,
  AzurePowerShellCredential,
  ChainedTokenCredential,
  CredentialUnavailableError,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
  type TokenCredentialOptions,
} from "@azure/identity";
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { describeCredentialSettings, type AzureCredentialSettings } from "./credential-config.js";

/** A member of the chain under the name readiness and the log report. */
export interface NamedCredential {
  name: string;
  credential: TokenCredential;
}

/** What readiness reports of the credential: the member that gave the last token, and the last failure. */
export interface CredentialStatus {
  /** The credential as configured, e.g. "DefaultAzureCredential" or "ManagedIdentityCredential". */
  configured: string;
  /** The member that gave the last token; undefined before the first. */
  answered: string | undefined;
  /** Why the last attempt gave no token (one line, no token or secret); undefined after a success. */
  lastError: string | undefined;
}

/**
 * A ChainedTokenCredential whose members note their name when they give a token, so the process knows
 * which one answered (DefaultAzureCredential keeps that to itself). A single credential is a chain of one.
 * `onAnswer` is told when the answering member changes: the first token, or a fall-back to another member.
 */
export class RecordingCredential implements TokenCredential {
  private readonly chain: ChainedTokenCredential;
  private readonly names: string[];
  /** The member asked last: a failure other than "unavailable" stops the chain there and names no member. */
  private lastAsked: string | undefined;
  private state: CredentialStatus;

  constructor(
    configured: string,
    members: NamedCredential[],
    private readonly onAnswer: (name: string, previous: string | undefined) => void = () => undefined,
  ) {
    this.state = { configured, answered: undefined, lastError: undefined };
    this.names = members.map((member) => member.name);
    this.chain = new ChainedTokenCredential(
      ...members.map(({ name, credential }) => ({
        getToken: async (scopes: string | string[], options?: GetTokenOptions) => {
          this.lastAsked = name;
          const token = await credential.getToken(scopes, options);
          if (token) this.record(name);
          return token;
        },
      })),
    );
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    try {
      const token = await this.chain.getToken(scopes, options);
      this.state.lastError = undefined;
      return token;
    } catch (error) {
      this.state.lastError = this.describe(error as Error);
      throw error;
    }
  }

  status(): CredentialStatus {
    return { ...this.state };
  }

  /** One part per member that failed, in chain order: the chain's aggregate error holds one error per member it tried. */
  private describe(error: Error): string {
    const errors = (error as Error & { errors?: unknown }).errors;
    const named = (name: string | undefined, member: Error) => {
      const text = oneLine(member, 500);
      return name === undefined || text.startsWith(name) ? text : `${name}: ${text}`;
    };
    if (error.name !== "AggregateAuthenticationError" || !Array.isArray(errors)) return named(this.lastAsked, error);
    return oneLine(new Error(errors.map((member: Error, index) => named(this.names[index], member)).join("; ")), 1000);
  }

  private record(name: string): void {
    const previous = this.state.answered;
    this.state.answered = name;
    if (previous !== name) this.onAnswer(name, previous);
  }
}

/** An error message fit for a probe's body: one line of at most `max` characters, anything shaped like a JWT removed. */
function oneLine(error: Error, max: number): string {
  const text = (error.message || error.name).replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, "[token]").replace(/\s+/g, " ").trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export interface ServiceCredentialOptions {
  authorityHost: string;
  /** Tests: the sandbox routing client, so every request of the credential reaches the emulator. */
  httpClient?: HttpClient;
  logger?: { info(obj: object, message: string): void };
}

/**
 * The azure-mode credential of the settings. `default` follows @azure/identity 4.13's DefaultAzureCredential
 * (defaultAzureCredential.ts): Environment, WorkloadIdentity, ManagedIdentity (probing IMDS first, 5 retries
 * from 800 ms), then the developer tools Azure CLI, Azure PowerShell and Azure Developer CLI. Left out: the
 * Visual Studio Code and broker credentials, which need an identity plugin this service does not install, and
 * AZURE_TOKEN_CREDENTIALS, which CMK_AZURE_CREDENTIAL replaces.
 */
export function createServiceCredential(settings: AzureCredentialSettings, options: ServiceCredentialOptions): RecordingCredential {
  const common: TokenCredentialOptions = { authorityHost: options.authorityHost, ...(options.httpClient ? { httpClient: options.httpClient } : {}) };
  const logger = options.logger;
  logger?.info({ credential: describeCredentialSettings(settings) }, "Azure credential configured (CMK_AZURE_CREDENTIAL)");
  const onAnswer = (name: string, previous: string | undefined) =>
    logger?.info({ credential: name, ...(previous ? { previous } : {}) }, previous ? "Azure token now from another credential" : "first Azure token");
  const managedIdentity = (clientId: string | undefined, inChain: boolean): NamedCredential => ({
    name: "ManagedIdentityCredential",
    credential: new ManagedIdentityCredential({
      ...common,
      ...(clientId ? { clientId } : {}),
      // In a chain, as DefaultAzureCredential does: a short IMDS probe lets the chain move on where there is no IMDS.
      ...(inChain ? { retryOptions: { maxRetries: 5, retryDelayInMs: 800 }, sendProbeRequest: true } : {}),
    } as ConstructorParameters<typeof ManagedIdentityCredential>[0]),
  });

  switch (settings.kind) {
    case "managed-identity":
      return new RecordingCredential("ManagedIdentityCredential", [managedIdentity(settings.clientId, false)], onAnswer);
    case "workload-identity": {
      const { tenantId, clientId, tokenFilePath } = settings;
      return new RecordingCredential("WorkloadIdentityCredential", [{ name: "WorkloadIdentityCredential", credential: new WorkloadIdentityCredential({ ...common, tenantId, clientId, tokenFilePath }) }], onAnswer);
    }
    case "environment":
      return new RecordingCredential("EnvironmentCredential", [{ name: "EnvironmentCredential", credential: new EnvironmentCredential(common) }], onAnswer);
    case "default": {
      const workload = settings.workload;
      const members: NamedCredential[] = [
        { name: "EnvironmentCredential", credential: new EnvironmentCredential(common) },
        {
          name: "WorkloadIdentityCredential",
          credential: workload
            ? new WorkloadIdentityCredential({ ...common, tenantId: workload.tenantId, clientId: workload.clientId, tokenFilePath: workload.tokenFilePath })
            : unavailable("WorkloadIdentityCredential: AZURE_FEDERATED_TOKEN_FILE is not set"),
        },
        managedIdentity(settings.managedIdentityClientId, true),
        { name: "AzureCliCredential", credential: new AzureCliCredential(common) },
        { name: "AzurePowerShellCredential", credential: new AzurePowerShellCredential(common) },
        { name: "AzureDeveloperCliCredential", credential: new AzureDeveloperCliCredential(common) },
      ];
      return new RecordingCredential("DefaultAzureCredential", members, onAnswer);
    }
  }
}

/** A member that is not configured here: the chain moves on, as DefaultAzureCredential's own stand-in does. */
function unavailable(message: string): TokenCredential {
  return { getToken: () => Promise.reject(new CredentialUnavailableError(message)) };
}
