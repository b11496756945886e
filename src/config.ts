import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { CronExpressionParser } from "cron-parser";
import { AZURE_CLOUD_NAMES } from "./azure/cloud.js";
import { AZURE_CREDENTIAL_KINDS, MANAGED_IDENTITY_KINDS, azureCredentialSettings, type AzureCredentialSettings } from "./azure/credential-config.js";

/** An integer read from an environment string. */
const Integer = (options: { minimum: number; maximum: number; default: number; description: string }) =>
  Type.Integer(options);

/**
 * The environment the service reads, as one TypeBox schema: the single place where a variable, its
 * default and its meaning are written down (README's configuration table mirrors it).
 */
export const EnvSchema = Type.Object({
  PORT: Integer({ minimum: 0, maximum: 65535, default: 3000, description: "API listener port" }),
  HOST: Type.String({ default: "0.0.0.0", minLength: 1, description: "API listener address" }),
  REDIS_URL: Type.String({
    default: "redis://127.0.0.1:6379",
    pattern: "^rediss?://",
    description: "BullMQ and all job state",
  }),
  CMK_QUEUE_PREFIX: Type.String({
    default: "cmk",
    // At most one {hash tag}, not empty: Redis Cluster hashes only the tag, so every key of the prefix lands in one slot.
    pattern: "^[A-Za-z0-9_.-]*(\\{[A-Za-z0-9_.-]+\\})?[A-Za-z0-9_.-]*$",
    minLength: 1,
    description:
      "BullMQ prefix; lets several deployments or test runs share one Redis. A {hash tag} (e.g. {cmk}) keeps every key in one cluster slot; with CMK_REDIS_CLUSTER=true a prefix without one is used as {prefix}",
  }),
  CMK_REDIS_AUTH: Type.Union([Type.Literal("password"), Type.Literal("entra")], {
    default: "password",
    description:
      "password: the user and password in REDIS_URL, if any; entra: a Microsoft Entra ID token of the service's credential (scope https://redis.azure.com/.default) as the password, refreshed before it expires on every connection",
  }),
  CMK_REDIS_USERNAME: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: "with CMK_REDIS_AUTH=entra, the Redis user; unset: the object id (oid) of the service's principal, from its token" }),
  ),
  CMK_REDIS_CA_FILE: Type.Optional(
    Type.String({ minLength: 1, description: "PEM file of CA certificates trusted for rediss:// besides the system's (a private CA); the server's certificate is always verified against REDIS_URL's host" }),
  ),
  CMK_REDIS_CLUSTER: Type.Boolean({
    default: false,
    description: "true: REDIS_URL is one node of a Redis Cluster (OSS cluster API); every connection is a cluster client and the prefix carries a hash tag",
  }),
  CMK_ROLE: Type.Union([Type.Literal("api"), Type.Literal("worker"), Type.Literal("all")], {
    default: "all",
    description: "api, worker or all (both in one process)",
  }),
  CMK_MODE: Type.Union([Type.Literal("sandbox"), Type.Literal("azure")], {
    default: "sandbox",
    description: "sandbox (the emulator) or azure (the credential CMK_AZURE_CREDENTIAL names)",
  }),
  CMK_CLOUD: Type.Union(AZURE_CLOUD_NAMES.map((name) => Type.Literal(name)), {
    default: "AzurePublicCloud",
    description: "the Azure cloud in azure mode: sign-in host, ARM endpoint and audience, Key Vault / Managed HSM and FHIR host names, key URL rules",
  }),
  CMK_AZURE_CREDENTIAL: Type.Union(AZURE_CREDENTIAL_KINDS.map((kind) => Type.Literal(kind)), {
    default: "default",
    description:
      "azure mode: how the service signs in. default: DefaultAzureCredential's chain (environment, workload identity, managed identity, Azure CLI, PowerShell, Developer CLI); managed-identity, workload-identity or environment: that credential alone",
  }),
  CMK_MANAGED_IDENTITY: Type.Optional(
    Type.Union(MANAGED_IDENTITY_KINDS.map((kind) => Type.Literal(kind)), {
      description: "azure mode: system or user-assigned (AZURE_CLIENT_ID names it); required with CMK_AZURE_CREDENTIAL=managed-identity; unset with default: AZURE_CLIENT_ID's identity if set, else system-assigned",
    }),
  ),
  CMK_SANDBOX_URL: Type.Optional(
    Type.String({ pattern: "^https://", description: "in sandbox mode, the emulator to use; unset: start an embedded one" }),
  ),
  CMK_SANDBOX_PORT: Integer({ minimum: 0, maximum: 65535, default: 8443, description: "port of an emulator this process starts" }),
  CMK_SANDBOX_HOST: Type.String({
    default: "127.0.0.1",
    minLength: 1,
    description: "address an emulator this process starts listens on (0.0.0.0 inside a container whose port is published)",
  }),
  CMK_SANDBOX_CA_FILE: Type.String({ default: ".sandbox/ca.pem", minLength: 1, description: "the emulator's CA certificate" }),
  CMK_SANDBOX_LRO_MS: Integer({ minimum: 0, maximum: 3_600_000, default: 3000, description: "how long an emulated ARM update runs" }),
  CMK_API_KEYS: Type.Optional(Type.String({ description: "JSON array of { name, sha256, roles }" })),
  CMK_WEBHOOK_SECRET: Type.Optional(Type.String({ pattern: "^whsec_", description: "Standard Webhooks signing secret" })),
  CMK_WEBHOOK_BACKOFF_MS: Integer({
    minimum: 10,
    maximum: 3_600_000,
    default: 10_000,
    description: "first retry delay of a webhook delivery; each later one doubles, capped at 1 h, for at least 24 h in all",
  }),
  CMK_WEBHOOK_TIMEOUT_MS: Integer({ minimum: 100, maximum: 60_000, default: 10_000, description: "how long one webhook delivery attempt may take" }),
  CMK_SSE_HEARTBEAT_MS: Integer({ minimum: 100, maximum: 300_000, default: 15_000, description: "interval of comment heartbeats on job event streams" }),
  CMK_SSE_MAX_STREAMS_PER_CREDENTIAL: Integer({
    minimum: 1,
    maximum: 100_000,
    default: 20,
    description: "job event streams one credential may hold open in one API process; more: 429 TooManyEventStreams",
  }),
  CMK_SSE_MAX_STREAMS: Integer({ minimum: 1, maximum: 100_000, default: 1000, description: "job event streams one API process holds open at most; more: 429 TooManyEventStreams" }),
  CMK_CALLBACK_ALLOWED_HOSTS: Type.Optional(
    Type.String({
      description:
        "comma-separated callback targets host[:port] (*.suffix for one label more); port 443 unless named; loopback hosts (http in sandbox mode) only with a port, e.g. 127.0.0.1:9000",
    }),
  ),
  CMK_AUTH_ISSUER: Type.Optional(Type.String({ pattern: "^https://", description: "Entra ID issuer for caller tokens" })),
  CMK_AUTH_AUDIENCE: Type.Optional(
    Type.String({ minLength: 1, description: "expected audience of caller tokens (comma-separated to accept several, e.g. the App ID URI and the client id)" }),
  ),
  CMK_TOKEN_SUBSCRIPTIONS: Type.Optional(
    Type.String({ description: 'JSON { "<appid, object id or group id>": ["<subscription id>"] }: subscriptions token callers may act on; when set, unlisted callers: none' }),
  ),
  CMK_TOKEN_MAX_LIFETIME_MINUTES: Integer({
    minimum: 5,
    maximum: 10_080,
    default: 1440,
    description: "longest lifetime (exp - iat) a caller's token may have; longer ones and tokens without iat are refused",
  }),
  CMK_RATE_LIMIT_PER_MINUTE: Integer({ minimum: 1, maximum: 1_000_000, default: 600, description: "requests per minute per credential (per client address before authentication)" }),
  CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE: Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 60,
    description: "requests per minute per credential to routes that read Azure (validations, templates, encryption and its health), within CMK_RATE_LIMIT_PER_MINUTE",
  }),
  CMK_READ_CACHE_MS: Integer({
    minimum: 0,
    maximum: 300_000,
    default: 5000,
    description: "how long Azure facts read for checks and reports are reused (identical concurrent lookups always share one request); 0: not kept",
  }),
  CMK_ARM_POLL_INTERVAL_MS: Type.Optional(
    Type.Integer({ minimum: 50, maximum: 600_000, description: "interval between polls of an ARM long-running operation (default 5000; 250 in sandbox mode)" }),
  ),
  CMK_SUBSCRIPTIONS: Type.Optional(
    Type.String({
      pattern: "^\\s*[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\\s*(,\\s*[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\\s*)*$",
      description: "comma-separated subscription ids that fleet rotations cover by default; unset: every subscription the service can list",
    }),
  ),
  CMK_ARM_WRITES_PER_SECOND: Type.Number({
    minimum: 0.01,
    maximum: 10_000,
    default: 10,
    description: "ARM writes per second per subscription, shared by every worker (ARM's documented refill: 10/s per subscription and principal)",
  }),
  CMK_ARM_WRITE_BURST: Integer({ minimum: 1, maximum: 100_000, default: 200, description: "ARM writes a subscription's budget holds when idle (ARM's bucket: 200)" }),
  CMK_ARM_READS_PER_SECOND: Type.Number({
    minimum: 0.01,
    maximum: 10_000,
    default: 25,
    description: "ARM reads per second per subscription, shared by every worker (ARM's documented refill: 25/s per subscription and principal)",
  }),
  CMK_ARM_READ_BURST: Integer({ minimum: 1, maximum: 100_000, default: 250, description: "ARM reads a subscription's budget holds when idle (ARM's bucket: 250)" }),
  CMK_TRUST_PROXY_HOPS: Integer({
    minimum: 0,
    maximum: 10,
    default: 0,
    description: "reverse proxies in front of the API whose X-Forwarded-For to trust (client address for audit and per-address rate limits)",
  }),
  CMK_WORKER_CONCURRENCY: Integer({ minimum: 1, maximum: 100, default: 5, description: "jobs one worker process runs at once" }),
  CMK_WORKER_LOCK_MS: Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 30_000,
    description: "how long a worker's lock on a job lasts without renewal; a job whose worker died is taken over after about this long",
  }),
  CMK_ROLE_PROPAGATION_WINDOW_MS: Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 600_000,
    description: "how long a new role assignment may take to reach Key Vault; a job waits for a younger granting assignment before it sets the key",
  }),
  CMK_APPROVALS: Type.Union([Type.Literal("none"), Type.Literal("required")], {
    default: "none",
    description: "none, or required: every change that would write to Azure (dry runs never) waits for an approver who is not its creator",
  }),
  CMK_APPROVAL_TTL_HOURS: Type.Number({
    exclusiveMinimum: 0,
    maximum: 24 * 90,
    default: 72,
    description: "an unapproved change is Canceled (ApprovalExpired) after this many hours (fractions allowed)",
  }),
  CMK_JOB_RETENTION_HOURS: Integer({ minimum: 24, maximum: 24 * 365, default: 168, description: "how long finished jobs' status monitors are kept" }),
  CMK_COMPLIANCE_SCAN_CRON: Type.String({
    default: "0 3 * * *",
    minLength: 1,
    maxLength: 200,
    description: "when scheduled compliance scans run (cron, the service's time zone UTC; one scan per schedule tick across all workers); off disables them",
  }),
  CMK_KEY_MAX_AGE_DAYS: Integer({ minimum: 1, maximum: 36_500, default: 365, description: "KeyVersionTooOld: a key version older than this many days" }),
  CMK_REQUIRE_CUSTOMER_MANAGED_KEY: Type.Boolean({ default: false, description: "true: MicrosoftManagedKey findings are High (Low otherwise)" }),
  CMK_FOLLOW_LATEST_KEY_VERSION: Type.Boolean({
    default: false,
    description: "true: a service a scan or a KeyNewVersionCreated event finds behind its key's newest enabled version gets a RotateKey to it",
  }),
  LOG_LEVEL: Type.Union(
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((level) => Type.Literal(level)),
    { default: "info", description: "pino log level" },
  ),
});

export type Env = Static<typeof EnvSchema>;

const SubscriptionId = Type.String({ pattern: "^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$" });

export const ApiKeyEntrySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    sha256: Type.String({ pattern: "^[0-9a-fA-F]{64}$" }),
    /** Ordered roles (each includes the ones before it) and the approver capability; several may be listed. */
    roles: Type.Array(Type.Union([Type.Literal("reader"), Type.Literal("operator"), Type.Literal("admin"), Type.Literal("approver")]), { minItems: 1, uniqueItems: true }),
    /** Subscriptions the key may act on; absent: all. */
    subscriptions: Type.Optional(Type.Array(SubscriptionId, { minItems: 1 })),
  },
  { additionalProperties: false },
);
export type ApiKeyEntry = Static<typeof ApiKeyEntrySchema>;

/** Token caller (appid/azp, oid or group id) → subscriptions it may act on. */
export const TokenSubscriptionsSchema = Type.Record(Type.String({ minLength: 1, maxLength: 100 }), Type.Array(SubscriptionId, { minItems: 1 }));
export type TokenSubscriptions = Static<typeof TokenSubscriptionsSchema>;

export interface Config extends Omit<Env, "CMK_API_KEYS" | "CMK_ARM_POLL_INTERVAL_MS" | "CMK_TOKEN_SUBSCRIPTIONS" | "CMK_SUBSCRIPTIONS"> {
  /** CMK_SUBSCRIPTIONS, lower case; undefined: every subscription the service can list. */
  fleetSubscriptions: string[] | undefined;
  /** NODE_ENV=production: nothing is made up (no default mode, no private Redis). */
  production: boolean;
  /** REDIS_URL was given; unset, a local run may start a private redis-server (src/local-redis.ts). */
  redisUrlSet: boolean;
  apiKeys: ApiKeyEntry[] | undefined;
  tokenSubscriptions: TokenSubscriptions | undefined;
  armPollIntervalMs: number;
  /** azure mode: the credential to build (CMK_AZURE_CREDENTIAL, CMK_MANAGED_IDENTITY, AZURE_*); undefined in sandbox mode. */
  azureCredential: AzureCredentialSettings | undefined;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

/** Reads and checks the environment once; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== "") raw[key] = value;
  }
  const production = env.NODE_ENV === "production";
  // The sandbox default would report Succeeded for changes that never reach Azure: production says which.
  if (production && raw.CMK_MODE === undefined) {
    throw new ConfigError("CMK_MODE", `must be set when NODE_ENV=production: ${allowedValues(EnvSchema.properties.CMK_MODE).join(" or ")}`);
  }
  const redisUrlSet = raw.REDIS_URL !== undefined;
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, structuredClone(raw)));
  const firstError = Value.Errors(EnvSchema, converted).First();
  if (firstError) {
    const variable = firstError.path.replace(/^\//, "").split("/")[0] || "environment";
    const allowed = allowedValues(firstError.schema);
    const message = allowed.length > 0 ? `must be one of ${allowed.join(", ")}` : firstError.message;
    throw new ConfigError(variable, `${message} (got ${JSON.stringify(raw[variable] ?? null)})`);
  }
  const parsed = converted as Env;
  // Without an audience any token of the issuer's tenant would do.
  if (parsed.CMK_AUTH_ISSUER && !parsed.CMK_AUTH_AUDIENCE && parsed.CMK_MODE === "azure") {
    throw new ConfigError("CMK_AUTH_AUDIENCE", "is required when CMK_AUTH_ISSUER is set");
  }
  if (parsed.CMK_REDIS_AUTH === "entra") {
    const url = new URL(parsed.REDIS_URL);
    if (url.username || url.password) throw new ConfigError("REDIS_URL", "must carry no user or password with CMK_REDIS_AUTH=entra (the token is the password; CMK_REDIS_USERNAME sets the user)");
  }
  // The emulator answers the public cloud's host names only.
  if (parsed.CMK_MODE === "sandbox" && parsed.CMK_CLOUD !== "AzurePublicCloud") {
    throw new ConfigError("CMK_CLOUD", `${parsed.CMK_CLOUD} needs CMK_MODE=azure: the sandbox emulates AzurePublicCloud's host names`);
  }
  const cronProblem = complianceCronProblem(parsed.CMK_COMPLIANCE_SCAN_CRON);
  if (cronProblem) throw new ConfigError("CMK_COMPLIANCE_SCAN_CRON", `${cronProblem} (got ${JSON.stringify(parsed.CMK_COMPLIANCE_SCAN_CRON)})`);
  if (parsed.CMK_REDIS_USERNAME !== undefined && parsed.CMK_REDIS_AUTH !== "entra") {
    throw new ConfigError("CMK_REDIS_USERNAME", "is only used with CMK_REDIS_AUTH=entra; with passwords the user goes in REDIS_URL (rediss://user:password@host:port)");
  }
  const azureCredential = azureCredentialOf(parsed, env, raw);
  const { CMK_SUBSCRIPTIONS: _subscriptions, ...rest } = parsed;
  return {
    ...rest,
    CMK_QUEUE_PREFIX: parsed.CMK_REDIS_CLUSTER ? withHashTag(parsed.CMK_QUEUE_PREFIX) : parsed.CMK_QUEUE_PREFIX,
    production,
    redisUrlSet,
    apiKeys: parseJsonVariable("CMK_API_KEYS", parsed.CMK_API_KEYS, Type.Array(ApiKeyEntrySchema), '[{"name","sha256","roles"}]'),
    tokenSubscriptions: parseJsonVariable("CMK_TOKEN_SUBSCRIPTIONS", parsed.CMK_TOKEN_SUBSCRIPTIONS, TokenSubscriptionsSchema, '{"<appid>": ["<subscription id>"]}'),
    armPollIntervalMs: parsed.CMK_ARM_POLL_INTERVAL_MS ?? (parsed.CMK_MODE === "sandbox" ? 250 : 5000),
    fleetSubscriptions: parsed.CMK_SUBSCRIPTIONS?.split(",").map((id) => id.trim().toLowerCase()),
    azureCredential,
  };
}

/** The azure-mode credential; in sandbox mode its variables are refused (the sandbox signs in as its seed app), the SDK's AZURE_* ignored. */
function azureCredentialOf(parsed: Env, env: NodeJS.ProcessEnv, raw: Record<string, unknown>): AzureCredentialSettings | undefined {
  if (parsed.CMK_MODE === "sandbox") {
    const set = (["CMK_AZURE_CREDENTIAL", "CMK_MANAGED_IDENTITY"] as const).find((name) => raw[name] !== undefined);
    if (set) throw new ConfigError(set, "is only used with CMK_MODE=azure; in sandbox mode the service signs in as the seed's cmk-service app");
    return undefined;
  }
  const result = azureCredentialSettings({ credential: parsed.CMK_AZURE_CREDENTIAL, managedIdentity: parsed.CMK_MANAGED_IDENTITY }, env);
  if ("problem" in result) throw new ConfigError(result.problem.variable, result.problem.message);
  return result.settings;
}

/** CMK_APPROVALS and CMK_APPROVAL_TTL_HOURS as the changes service, following and the worker take them. */
export function approvalPolicyOf(config: Pick<Config, "CMK_APPROVALS" | "CMK_APPROVAL_TTL_HOURS">): { required: boolean; ttlMs: number } {
  return { required: config.CMK_APPROVALS === "required", ttlMs: Math.round(config.CMK_APPROVAL_TTL_HOURS * 3_600_000) };
}

/**
 * Why a CMK_COMPLIANCE_SCAN_CRON value cannot be used, or undefined when it can: `off`, or a cron
 * expression of 5 fields (6 with seconds first) or a macro such as `@daily`, as BullMQ's job scheduler parses it (cron-parser, the version
 * BullMQ pins). Checked at start, so a typo stops the process instead of silently never scanning.
 */
export function complianceCronProblem(value: string): string | undefined {
  if (value === "off") return undefined;
  const fields = value.trim().split(/\s+/);
  if (!value.startsWith("@") && (fields.length < 5 || fields.length > 6)) return `must be "off" or a cron expression of 5 fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *"; got ${fields.length} field${fields.length === 1 ? "" : "s"}`;
  try {
    CronExpressionParser.parse(value, { tz: "UTC" });
    return undefined;
  } catch (error) {
    return `is not a valid cron expression: ${(error as Error).message}`;
  }
}

/**
 * The prefix with a Redis Cluster hash tag: BullMQ's scripts and the store's take keys of one queue (and
 * the store's beside them) together, which a cluster allows only within one slot. A prefix that has a tag
 * is kept; one without becomes `{prefix}`.
 */
export function withHashTag(prefix: string): string {
  return /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
}

/** A listener that cannot bind, as a configuration error naming the variable to change (other errors pass through). */
export function listenError(error: Error, listener: { port: number; portVariable: string; host: string; hostVariable: string }): Error {
  const { port, portVariable, host, hostVariable } = listener;
  switch ((error as NodeJS.ErrnoException).code) {
    case "EADDRINUSE":
      return new ConfigError(portVariable, `port ${port} on ${host} is already in use; set ${portVariable} to a free port, or stop what listens there`);
    case "EACCES":
      return new ConfigError(portVariable, `port ${port} on ${host} needs privileges this process does not have; set ${portVariable} to a port above 1023`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
      return new ConfigError(hostVariable, `${host} is not an address of this machine; set ${hostVariable} to one (0.0.0.0 for all)`);
    default:
      return error;
  }
}

/** The literals of an enum-like union (CMK_MODE, CMK_ROLE, LOG_LEVEL); empty for other schemas. */
function allowedValues(schema: TSchema): string[] {
  const members: unknown[] = Array.isArray(schema.anyOf) ? schema.anyOf : [];
  return members.flatMap((member) => (typeof member === "object" && member !== null && "const" in member ? [String(member.const)] : []));
}

/** A variable holding JSON, checked against its schema; undefined when unset. */
function parseJsonVariable<T extends TSchema>(variable: string, text: string | undefined, schema: T, expected: string): Static<T> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ConfigError(variable, `is not valid JSON; expected ${expected}`);
  }
  const error = Value.Errors(schema, value).First();
  if (error) throw new ConfigError(variable, `${error.path || "/"} ${error.message}`);
  return value as Static<T>;
}
