import { parseFhirServiceId, parseUserAssignedIdentityId } from "../../domain/arm-ids.js";
import { buildReport, reportStats } from "../../domain/compliance/report.js";
import { behindLatestMoves } from "../../domain/compliance/follow.js";
import { evaluateService, suggestKeyUrl, type ComplianceSettings, type KeyVersionFacts } from "../../domain/compliance/rules.js";
import type { Fact, KeyFacts, PrincipalFacts, RoleAssignmentFacts } from "../../domain/checks/facts.js";
import { diagnoseEncryption, type EncryptionHealth } from "../../domain/encryption.js";
import type { FhirServiceResource, RequestedIdentity } from "../../domain/fhir-resource.js";
import type { FleetService } from "../../domain/fleet-plan.js";
import { isManagedHsmKey, parseKeyUrl, type KeyUrl } from "../../domain/key-url.js";
import { JobError } from "../../errors.js";
import type { ComplianceScanJobRequest, ServiceCompliance } from "../../schemas/compliance.js";
import type { JobResult, NotListedSubscription } from "../../schemas/jobs.js";
import type { JobSteps, StepContext, StepOutcome } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { coveredSubscriptions } from "../../azure/discovery.js";
import { describeNotListed, discoverServices, type DiscoveryTally } from "../steps/discover-services.js";
import { identityOf } from "../../preflight/resolve-request.js";
import type { JobContext } from "./index.js";

/** One key as ReadKeys read it: every version's attributes (one list) and the versions services use (one read each). */
interface KeyRead {
  versions: KeyVersionFacts[];
  /** By lower-case version: the used version's facts (a read of the versioned key). */
  used: Record<string, Fact<KeyFacts>>;
  /** Read only when a used version is missing: whether the key sits soft-deleted. */
  deleted?: Fact<{ recoveryId: string; scheduledPurgeDate?: Date }>;
}

const DATE_FIELDS = new Set(["created", "notBefore", "expiresOn", "scheduledPurgeDate"]);
/** Step outputs are stored as JSON: dates come back as Date objects. */
const revive = <T>(value: T): T => JSON.parse(JSON.stringify(value), (name, field: unknown) => (DATE_FIELDS.has(name) && typeof field === "string" ? new Date(field) : field)) as T;

const versionlessOf = (key: KeyUrl) => `${key.vaultUrl}/keys/${key.keyName}`.toLowerCase();

/**
 * A compliance scan (`POST /v1/compliance-scans`, and the scheduled ones): Discover every FHIR service of
 * the covered subscriptions (fleet rotation's discovery: paged, paced list calls), ReadKeys (each distinct
 * key once: its versions list, and each version services use), Evaluate (the rules of domain/compliance,
 * and the lost-key-access diagnosis from what was read: one read per vault of its role assignments, one per
 * user-assigned identity), then Store the report as the latest (the previous one stays until then), and
 * Follow: with CMK_FOLLOW_LATEST_KEY_VERSION, one RotateKey per service behind its key's newest version.
 * The scan writes nothing to Azure.
 */
export async function runComplianceScan(steps: JobSteps, deps: WorkerDependencies, request: ComplianceScanJobRequest, job: JobContext): Promise<JobResult> {
  const started = Date.now();
  const discovered = await steps.run<Discovered>("Discover", (context) => discover(deps, request, job, context));
  const stored = await job.fleets.services(job.jobId);
  if (!stored) throw new JobError({ code: "InternalError", message: "The scan's discovered services are gone from the job store.", target: "compliance-scans" }, true);
  const services = stored.services;
  const keys = revive(await steps.run<Record<string, KeyRead>>("ReadKeys", (context) => readKeys(deps, services, context)));
  const counted = await steps.run<{ services: number; findings: { High: number; Medium: number; Low: number } }>("Evaluate", () =>
    evaluate(deps, job, services, keys, discovered.subscriptions),
  );
  await steps.run("Store", async () => {
    const size = await job.compliance.reports.publish(job.jobId, (report) => reportStats(report, Date.now() - started));
    if (size === false) {
      // A retried Store after the report was published: nothing left to move.
      const latest = await job.compliance.reports.latest();
      if (latest?.scanId !== job.jobId) throw new JobError({ code: "InternalError", message: "The scan's report is gone from the job store.", target: "compliance-scans" }, true);
      return { message: "The report is the latest already." };
    }
    return { message: `Report stored as the latest (${counted.services} service(s), ${size} bytes gzipped).` };
  });
  const followed = await steps.run<{ started: number }>("Follow", async () => {
    if (!job.compliance.follow) return { status: "Skipped", message: "CMK_FOLLOW_LATEST_KEY_VERSION is off: nothing started.", output: { started: 0 } };
    const report = await job.compliance.reports.latest();
    const moves = report?.scanId === job.jobId ? behindLatestMoves(report) : [];
    const outcome = await job.compliance.followLatest(moves);
    return {
      message: `${moves.length} service(s) behind their key's newest version: ${outcome.started} RotateKey job(s) started, ${outcome.already} started before, ${outcome.busy} with another change running.`,
      output: { started: outcome.started },
    };
  });
  return steps.succeed({
    scannedServices: counted.services,
    findings: counted.findings,
    keysRead: Object.keys(keys).length,
    ...(followed.started ? { followStarted: followed.started } : {}),
    ...(discovered.notListed?.length ? { notListed: discovered.notListed } : {}),
  });
}

/** What Discover keeps for the later steps: the subscriptions scanned, and those that could not be listed. */
interface Discovered {
  subscriptions: string[];
  notListed?: NotListedSubscription[];
}

async function discover(deps: WorkerDependencies, request: ComplianceScanJobRequest, job: JobContext, context: StepContext): Promise<StepOutcome<Discovered>> {
  const saved = await job.fleets.services(job.jobId);
  if (saved) return { message: saved.summary, output: JSON.parse(saved.discovery) as Discovered };
  const subscriptions = await coveredSubscriptions(deps.discovery, request.subscriptions, job.fleetSubscriptions, job.data.scope);
  const describe = (tally: DiscoveryTally) =>
    `Subscriptions ${tally.done} of ${tally.subscriptions} scanned, ${tally.workspaces} workspace(s), ${tally.listed} FHIR service(s) found` +
    describeNotListed(tally) +
    ".";
  const { services, tally } = await discoverServices(deps.discovery, subscriptions, { progress: (fraction, tally) => context.reportFraction(fraction, describe(tally)) });
  const summary = describe(tally);
  const output: Discovered = { subscriptions, ...(tally.notListed.length ? { notListed: tally.notListed } : {}) };
  await job.fleets.saveServices(job.jobId, services, summary, JSON.stringify(output));
  return { message: summary, output };
}

/** Each distinct key read once: its versions (one paged list), each version services use (one read), and a missing one's soft-deleted state. */
async function readKeys(deps: WorkerDependencies, services: readonly FleetService[], context: StepContext): Promise<StepOutcome<Record<string, KeyRead>>> {
  const byKey = new Map<string, { key: KeyUrl; versions: Set<string> }>();
  for (const service of services) {
    const key = parseKeyUrl(service.keyEncryptionKeyUrl ?? "");
    if (!key?.version) continue;
    const entry = byKey.get(versionlessOf(key)) ?? { key, versions: new Set<string>() };
    entry.versions.add(key.version.toLowerCase());
    byKey.set(versionlessOf(key), entry);
  }
  const read: Record<string, KeyRead> = {};
  let done = 0;
  // A few keys at a time: Key Vault's own limits are per vault, and most fleets share a handful of keys.
  const entries = [...byKey.entries()];
  for (let i = 0; i < entries.length; i += 8) {
    await Promise.all(
      entries.slice(i, i + 8).map(async ([versionless, { key, versions }]) => {
        const listed = await deps.keyVault.keyVersions(key).catch((error: { statusCode?: number }) => {
          if (error.statusCode === 404 || error.statusCode === 403) return [];
          throw error;
        });
        const all: KeyVersionFacts[] = listed.map((version) => ({
          version: version.url.split("/").at(-1)!,
          enabled: version.enabled,
          ...(version.createdOn ? { created: version.createdOn } : {}),
          ...(version.notBefore ? { notBefore: version.notBefore } : {}),
          ...(version.expiresOn ? { expiresOn: version.expiresOn } : {}),
        }));
        const used: Record<string, Fact<KeyFacts>> = {};
        for (const version of versions) {
          const fact = await deps.keyVault.keyFacts({ ...key, version, url: `${key.vaultUrl}/keys/${key.keyName}/${version}` });
          if (fact.status === "unreadable" && fact.transient) throw new JobError({ code: "AzureUnavailable", message: `Key Vault did not answer for ${key.keyName}: ${fact.reason}.`, target: versionless }, true);
          used[version] = fact;
        }
        const missing = Object.values(used).some((fact) => fact.status === "missing");
        const deleted = missing && !isManagedHsmKey(key) ? await deps.keyVault.deletedKey(key) : undefined;
        read[versionless] = { versions: all, used, ...(deleted ? { deleted } : {}) };
        done += 1;
      }),
    );
    await context.reportFraction(done / Math.max(1, entries.length), `${done} of ${entries.length} key(s) read.`);
  }
  return { message: `${entries.length} distinct key(s) read once each, for ${services.filter((service) => service.keyEncryptionKeyUrl).length} service(s) on customer-managed keys.`, output: read };
}

/** The newest enabled version by creation. */
function newest(versions: readonly KeyVersionFacts[]): KeyVersionFacts | undefined {
  return versions.filter((version) => version.enabled).reduce<KeyVersionFacts | undefined>((best, version) => (!best || (version.created?.getTime() ?? 0) > (best.created?.getTime() ?? 0) ? version : best), undefined);
}

/** The service as the diagnosis reads a resource: what the list showed. */
function resourceOf(service: FleetService): FhirServiceResource {
  const userAssigned = Object.fromEntries((service.userAssignedIdentityIds ?? []).map((id) => [id, {}]));
  return {
    id: service.id,
    ...(service.location ? { location: service.location } : {}),
    ...(service.identityType ? { identity: { type: service.identityType, ...(service.principalId ? { principalId: service.principalId } : {}), ...(service.userAssignedIdentityIds ? { userAssignedIdentities: userAssigned } : {}) } } : {}),
    ...(service.keyEncryptionKeyUrl ? { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: service.keyEncryptionKeyUrl } } } : {}),
  } as FhirServiceResource;
}

/**
 * The rules for every service, and the diagnosis from what was read: the key facts of ReadKeys, the
 * principal from the list (system-assigned) or one read per user-assigned identity, and the role
 * assignments at each vault (one paged list per vault). The report is saved aside for Store.
 */
async function evaluate(
  deps: WorkerDependencies,
  job: JobContext,
  services: readonly FleetService[],
  keys: Record<string, KeyRead>,
  subscriptions: string[],
): Promise<StepOutcome<{ services: number; findings: { High: number; Medium: number; Low: number } }>> {
  const now = new Date();
  const settings: ComplianceSettings = job.compliance.settings;
  // Vaults (by name) and their role assignments, each read once; a Managed HSM's access is in its own RBAC.
  const vaultNames = [...new Set(Object.keys(keys).map((url) => parseKeyUrl(url)).filter((key): key is KeyUrl => !!key && !isManagedHsmKey(key)).map((key) => key.vaultName.toLowerCase()))];
  const access = new Map<string, { vault: Awaited<ReturnType<WorkerDependencies["vaults"]["vaultFacts"]>>; roles: Fact<Map<string, RoleAssignmentFacts[]>> }>();
  await Promise.all(
    vaultNames.map(async (name) => {
      const vault = await deps.vaults.vaultFacts(name, subscriptions);
      let roles: Fact<Map<string, RoleAssignmentFacts[]>> = {
        status: "unreadable",
        reason: vault.status === "unreadable" ? `the vault could not be read: ${vault.reason}` : "the vault was not found in the scanned subscriptions",
      };
      if (vault.status === "found") {
        const vaultSubscription = /^\/subscriptions\/([^/]+)\//i.exec(vault.value.id)?.[1] ?? subscriptions[0]!;
        roles = await deps.roleAssignments.allAtScope(vaultSubscription, vault.value.id);
      }
      access.set(name, { vault, roles });
    }),
  );
  const uamiIds = [...new Set(services.flatMap((service) => (service.keyEncryptionKeyUrl ? (service.userAssignedIdentityIds ?? []) : [])).map((id) => id.toLowerCase()))];
  const principals = new Map<string, Fact<PrincipalFacts>>();
  await Promise.all(
    uamiIds.map(async (id) => {
      const ref = parseUserAssignedIdentityId(id);
      if (!ref) return;
      const fact = await deps.identities.userAssignedIdentity(ref);
      principals.set(id, fact.status === "found" ? { status: "found", value: { kind: "UserAssigned", principalId: fact.value.principalId, userAssignedIdentityId: id } } : fact);
    }),
  );

  const rows = services.map((service) => {
    const key = parseKeyUrl(service.keyEncryptionKeyUrl ?? "");
    const read = key ? keys[versionlessOf(key)] : undefined;
    const version = key?.version?.toLowerCase();
    const resource = resourceOf(service);
    const identity = identityOf(resource);
    const health = key && read && version ? diagnose(service, resource, identity, key, read, version, access, principals, now) : undefined;
    const keyVersion = read?.versions.find((entry) => entry.version.toLowerCase() === version);
    return {
      facts: {
        service: { fhirServiceId: service.id, ...(service.location ? { location: service.location } : {}), ...(identity ? { identity } : {}), ...(service.keyEncryptionKeyUrl ? { keyEncryptionKeyUrl: service.keyEncryptionKeyUrl } : {}) },
        ...(keyVersion ? { keyVersion } : {}),
        ...(read && newest(read.versions) ? { latestVersion: newest(read.versions)! } : {}),
        ...(health ? { health } : service.keyEncryptionKeyUrl ? {} : { health: { status: "Healthy" as const, checks: [] } }),
      },
      location: service.location,
    };
  });
  // A Microsoft-managed service is recommended the key most customer-managed services of its region use.
  const customerManaged = rows
    .filter((row) => row.facts.service.keyEncryptionKeyUrl)
    .map((row) => ({ ...(row.location ? { location: row.location } : {}), keyEncryptionKeyUrl: row.facts.service.keyEncryptionKeyUrl!, ...(row.facts.latestVersion ? { latestKeyVersion: row.facts.latestVersion.version } : {}) }));
  const evaluated: ServiceCompliance[] = rows.map((row) => {
    const suggestedKeyUrl = row.facts.service.keyEncryptionKeyUrl ? undefined : suggestKeyUrl(row.location, customerManaged);
    return evaluateService({ ...row.facts, ...(suggestedKeyUrl ? { suggestedKeyUrl } : {}) }, now, settings);
  });
  const report = buildReport(job.jobId, new Date(), evaluated);
  await job.compliance.reports.savePending(job.jobId, report);
  const { findings } = report.summary;
  return {
    message: `${report.summary.services} service(s): ${report.summary.customerManaged} on customer-managed keys, ${report.summary.microsoftManaged} Microsoft-managed; findings High ${findings.High}, Medium ${findings.Medium}, Low ${findings.Low}.`,
    output: { services: report.summary.services, findings },
  };
}

/** The lost-key-access diagnosis (domain/encryption.ts) from the facts the scan read; no FHIR data plane call. */
function diagnose(
  service: FleetService,
  resource: FhirServiceResource,
  identity: RequestedIdentity | undefined,
  key: KeyUrl,
  read: KeyRead,
  version: string,
  access: Map<string, { vault: Awaited<ReturnType<WorkerDependencies["vaults"]["vaultFacts"]>>; roles: Fact<Map<string, RoleAssignmentFacts[]>> }>,
  principals: Map<string, Fact<PrincipalFacts>>,
  now: Date,
): EncryptionHealth | undefined {
  const ref = parseFhirServiceId(service.id);
  if (!ref) return undefined;
  const keyFact = read.used[version] ?? { status: "unreadable", reason: "not read" };
  const vaultAccess = access.get(key.vaultName.toLowerCase());
  const principal: Fact<PrincipalFacts> =
    identity?.type === "UserAssigned"
      ? (principals.get(identity.userAssignedIdentityId.toLowerCase()) ?? { status: "missing" })
      : service.principalId
        ? { status: "found", value: { kind: "SystemAssigned", principalId: service.principalId } }
        : { status: "missing" };
  const principalId = principal.status === "found" ? principal.value.principalId : undefined;
  const roleAssignments: Fact<RoleAssignmentFacts[]> =
    vaultAccess?.roles.status === "found" ? { status: "found", value: (principalId && vaultAccess.roles.value.get(principalId)) || [] } : (vaultAccess?.roles as Fact<RoleAssignmentFacts[]> | undefined) ?? { status: "unreadable", reason: "a Managed HSM grants access in its own local RBAC" };
  return diagnoseEncryption(
    ref,
    resource,
    identity,
    {
      key: keyFact,
      ...(keyFact.status === "missing" && read.deleted ? { deletedKey: read.deleted } : {}),
      vault: vaultAccess?.vault ?? { status: "missing" },
      principal,
      roleAssignments,
    },
    // No propagation window: a scan judges services as they run, not a change about to rely on a new
    // assignment; a young grant is not lost access (that wait belongs to the pre-flight of a change).
    { now, propagationWindowMs: 0 },
  );
}
