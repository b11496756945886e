import { parseUserAssignedIdentityId } from "../../domain/arm-ids.js";
import { failedChecks } from "../../domain/checks/check-result.js";
import { checkKey } from "../../domain/checks/key-checks.js";
import { checkVault } from "../../domain/checks/vault-checks.js";
import type { RoleAssignmentFacts } from "../../domain/checks/facts.js";
import {
  fleetChildJobId,
  fleetCounts,
  fleetFailure,
  fleetFraction,
  isChildEnded,
  namesKey,
  newestEnabledVersion,
  planFleet,
  targetUrl,
  versionMadeSince,
  type ChildState,
  type FleetPlan,
  type FleetService,
} from "../../domain/fleet-plan.js";
import type { CancelRecord, ChangeJobData } from "../../domain/job-record.js";
import { isManagedHsmKey, parseKeyUrl, type KeyUrl } from "../../domain/key-url.js";
import type { FleetJobRequest } from "../../schemas/key-rotations.js";
import type { RotateKeyRequest, SetKeyRequest } from "../../schemas/change-requests.js";
import { fleetChildRollbacks } from "../../domain/rollback.js";
import type { JobResult, NotListedSubscription } from "../../schemas/jobs.js";
import { JobError } from "../../errors.js";
import { JobCanceledError } from "../../job-store/cancel.js";
import type { SharedFleetFacts } from "../../job-store/fleet-store.js";
import type { JobSteps, StepContext, StepOutcome } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { JobContext } from "./index.js";
import { coveredSubscriptions } from "../../azure/discovery.js";
import { describeNotListed, discoverServices, type DiscoveryTally } from "../steps/discover-services.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Discovered {
  subscriptions: string[];
  services: number;
  /** Subscriptions that could not be listed, for the result. */
  notListed?: NotListedSubscription[];
}

/**
 * The parent of a fleet rotation (`POST /v1/key-rotations`): Discover the FHIR services on the key (list
 * calls, every page, in the subscriptions it may look in), ResolveTarget (the version asked for, the
 * newest enabled one, or one new version made once however often the parent is retried), Preflight what
 * every service shares once (the key, its vault, the role assignments at the vault, the user-assigned
 * identities), FanOut one RotateKey child per service not on the target yet, and Aggregate: follow the
 * children until the last one ends. Each step's result is stored (discovery in the job store's fleet
 * record), so a parent taken over by another worker resumes without discovering or adding anything twice.
 */
export async function runRotateFleet(steps: JobSteps, deps: WorkerDependencies, request: FleetJobRequest, job: JobContext): Promise<JobResult> {
  if (job.data.rollbackOf) return runFleetRollback(steps, deps, request, job, job.data.rollbackOf);
  const key = parseKeyUrl(request.keyUrl)!;
  const discovered = await steps.run<Discovered>("Discover", (context) => discover(deps, request, job, key, context));
  const target = await steps.run<string>("ResolveTarget", () => resolveTarget(deps, request, job, key));
  const stored = await job.fleets.services(job.jobId);
  if (!stored) throw new JobError({ code: "InternalError", message: "The fleet's discovered services are gone from the job store.", target: request.keyUrl }, true);
  const services = stored.services;
  await steps.run("Preflight", () => sharedPreflight(deps, job, request, parseKeyUrl(target)!, discovered.subscriptions, services));

  // With createNewVersion a dry run makes no version: every service on the key would move.
  const plan: FleetPlan = request.dryRun && request.createNewVersion ? { move: services.filter((service) => namesKey(key, service.keyEncryptionKeyUrl)), skip: [] } : planFleet(services, key, target);
  if (request.dryRun) {
    await steps.skipRemaining("Dry run: no child jobs, nothing was sent to Azure.");
    return steps.succeed({
      targetKeyEncryptionKeyUrl: target,
      services: fleetCounts({ move: plan.move.length, skip: plan.skip.length }, []),
      wouldChange: plan.move.map((service) => service.id),
      armWrites: 0,
      dryRun: true,
      ...notListedOf(discovered),
    });
  }

  const children = plan.move.map((service) => ({
    jobId: fleetChildJobId(job.jobId, service.id),
    data: childData(job.data, { operation: "RotateKey", fhirServiceId: service.id }, job.jobId, target),
  }));
  await fanOut(steps, job, children, `${plan.skip.length} already on the target`);
  return aggregate(steps, deps, job, request, target, fleetSizes(plan), movedFrom(plan.move), children, notListedOf(discovered));
}

const notListedOf = (discovered: Discovered) => (discovered.notListed?.length ? { notListed: discovered.notListed } : {});

/**
 * The rollback of a fleet rotation (`POST /v1/jobs/{id}/rollback` on its parent): a parent like the
 * rotation's, whose Discover reads the original's children instead of ARM, and adds one SetKey child per
 * child that moved a service, back to the key URL and identity that child replaced (recorded right
 * before its write). Each rollback child runs a SetKey's full pre-flight (the old version must still be
 * enabled and reachable), so ResolveTarget and Preflight have nothing to do; FanOut and Aggregate are the
 * rotation's. The parent was approved (and waited for its window) as a whole; children inherit notAfter.
 */
async function runFleetRollback(steps: JobSteps, deps: WorkerDependencies, request: FleetJobRequest, job: JobContext, originalId: string): Promise<JobResult> {
  await steps.run("Discover", async () => {
    const saved = (await job.fleets.rollbacks(job.jobId)) ?? (await planFleetRollback(job, request, originalId));
    return { message: saved.summary, output: { rollbacks: saved.rollbacks.length, skipped: saved.skipped } };
  });
  const plan = await job.fleets.rollbacks(job.jobId);
  if (!plan) throw new JobError({ code: "InternalError", message: "The fleet rollback's plan is gone from the job store.", target: request.keyUrl }, true);
  await steps.skip(["ResolveTarget", "Preflight"], "Each service goes back to the key version it had before the rotation; each rollback child checks it (enabled, reachable by the identity) in its own pre-flight.");
  const restored = [...new Set(plan.rollbacks.map((rollback) => rollback.request.keyEncryptionKeyUrl))];
  const children = plan.rollbacks.map((rollback) => ({
    jobId: fleetChildJobId(job.jobId, rollback.request.fhirServiceId),
    data: childData(job.data, rollback.request, job.jobId, rollback.request.keyEncryptionKeyUrl, rollback.rollbackOf),
  }));
  await fanOut(steps, job, children, `${plan.skipped} child job(s) of ${originalId} with nothing to restore`);
  const moved = plan.rollbacks.map((rollback) => rollback.currentKeyEncryptionKeyUrl).filter((url): url is string => url !== undefined);
  return aggregate(steps, deps, job, request, restored.length === 1 ? restored[0] : undefined, { move: children.length, skip: plan.skipped }, moved, children);
}

/** What a fleet rollback undoes, from the original's children (read in batches), saved once with the job. */
async function planFleetRollback(job: JobContext, request: FleetJobRequest, originalId: string) {
  const originals = await job.fleets.childJobs(await job.fleets.childIds(originalId));
  const { rollbacks, skipped } = fleetChildRollbacks(originals, { ticket: request.ticket });
  const why = [...new Set(skipped.map((child) => child.code))].map((code) => `${skipped.filter((child) => child.code === code).length} ${code}`);
  const summary =
    `${originals.length} child job(s) of fleet rotation ${originalId} read: ${rollbacks.length} moved a service and get a rollback child` +
    (skipped.length ? `, ${skipped.length} have nothing to restore (${why.join(", ")})` : "") +
    ".";
  const plan = { rollbacks, skipped: skipped.length, summary };
  await job.fleets.saveRollbacks(job.jobId, plan);
  return plan;
}

/** Adds the children (deterministic ids: adding them again adds none twice), saying how many wait for another change on their service. */
async function fanOut(steps: JobSteps, job: JobContext, children: Array<{ jobId: string; data: ChangeJobData }>, others: string): Promise<void> {
  await steps.run("FanOut", async () => {
    const { added, waiting } = await job.fleets.addChildren(children);
    return {
      message: `${children.length} service(s) to change, ${others}: ${added.length} child job(s) added${waiting.length ? `, ${waiting.length} wait for another change on their service to end` : ""}.`,
      output: { children: children.length },
    };
  });
}

const fleetSizes = (plan: FleetPlan) => ({ move: plan.move.length, skip: plan.skip.length });
const movedFrom = (services: readonly FleetService[]) => services.map((service) => service.keyEncryptionKeyUrl).filter((url): url is string => url !== undefined);

/** Every service on the key in the subscriptions the rotation may look in, listed workspace by workspace. */
async function discover(deps: WorkerDependencies, request: FleetJobRequest, job: JobContext, key: KeyUrl, context: StepContext): Promise<StepOutcome<Discovered>> {
  const saved = await job.fleets.services(job.jobId);
  if (saved) return { message: saved.summary, output: JSON.parse(saved.discovery) as Discovered };
  const subscriptions = await coveredSubscriptions(deps.discovery, request.subscriptions, job.fleetSubscriptions, job.data.scope);
  const describe = (tally: DiscoveryTally) =>
    `Subscriptions ${tally.done} of ${tally.subscriptions} scanned, ${tally.workspaces} workspace(s), ${tally.listed} FHIR service(s) listed, ${tally.kept} on ${key.keyName}` +
    describeNotListed(tally) +
    ".";
  const { services, tally } = await discoverServices(deps.discovery, subscriptions, {
    keep: (service) => namesKey(key, service.keyEncryptionKeyUrl),
    progress: (fraction, tally) => context.reportFraction(fraction, describe(tally)),
  });
  const output: Discovered = { subscriptions, services: services.length, ...(tally.notListed.length ? { notListed: tally.notListed } : {}) };
  const summary = describe(tally);
  await job.fleets.saveServices(job.jobId, services, summary, JSON.stringify(output));
  return { message: summary, output };
}

/** The version every service moves to; a new one is made at most once per fleet, whatever happens to the worker. */
async function resolveTarget(deps: WorkerDependencies, request: FleetJobRequest, job: JobContext, key: KeyUrl): Promise<StepOutcome<string>> {
  if (request.targetVersion) {
    const url = targetUrl(key, request.targetVersion);
    return { message: `Target version as asked: ${url}.`, output: url };
  }
  const versions = await deps.keyVault.keyVersions(key);
  if (request.createNewVersion && !request.dryRun) {
    const { intent, earlier } = await job.fleets.newVersionIntent(job.jobId, { versionsBefore: versions.map((version) => version.url), dateTime: new Date().toISOString() });
    const made = earlier ? versionMadeSince(intent.versionsBefore, versions) : undefined;
    if (made) return { message: `New version ${made.url} (made by an earlier attempt of this rotation).`, output: made.url };
    const url = await deps.keyVault.rotate(key);
    return { message: `Made a new version of ${key.keyName} in ${key.vaultName}: ${url}.`, output: url };
  }
  const newest = newestEnabledVersion(versions, new Date());
  if (!newest) throw new JobError({ code: "NoEnabledKeyVersion", message: `Key ${key.keyName} in ${key.vaultName} has no enabled version usable now.`, target: request.keyUrl });
  const dry = request.dryRun && request.createNewVersion ? "Dry run: no version made; the checks look at the newest enabled version " : "Newest enabled version: ";
  return { message: `${dry}${newest.url}.`, output: newest.url };
}

/**
 * What every service shares, checked and read once: the target key (type, size, enabled, dates,
 * operations), its vault (soft delete, purge protection, firewall) looked for in the rotation's
 * subscriptions, every role assignment at the vault, and the user-assigned identities the services use.
 * Stored for the children; a failure here stops the rotation before any child is added.
 */
async function sharedPreflight(deps: WorkerDependencies, job: JobContext, request: FleetJobRequest, target: KeyUrl, subscriptions: string[], services: FleetService[]): Promise<StepOutcome<unknown>> {
  const now = new Date();
  const hsm = isManagedHsmKey(target);
  const [keyFact, vault] = await Promise.all([
    deps.keyVault.keyFacts(target),
    hsm ? deps.managedHsms.managedHsmFacts(target.vaultName, subscriptions) : deps.vaults.vaultFacts(target.vaultName, subscriptions),
  ]);
  for (const [name, fact] of [["key", keyFact], ["vault", vault]] as const) {
    if (fact.status === "unreadable" && fact.transient) throw new JobError({ code: "AzureUnavailable", message: `Azure did not answer the ${name} lookup: ${fact.reason}.`, target: request.keyUrl }, true);
  }
  // Region and identity access depend on each service: its child checks them.
  const checks = [...checkKey(target, keyFact, now), ...checkVault(target, vault, keyFact, undefined)].filter((check) => check.id !== "VaultRegion");
  const failures = failedChecks(checks);
  if (failures.length > 0) {
    throw new JobError({
      code: "PreflightFailed",
      message: `${failures.length} pre-flight check(s) of the target key failed: ${failures.map((check) => check.id).join(", ")}. No service was changed.`,
      target: target.url,
      details: failures.map((check) => ({ code: check.id, message: [check.message, check.remediation].filter(Boolean).join(" "), target: target.url })),
    });
  }
  let roles = new Map<string, RoleAssignmentFacts[]>();
  let rolesStatus: SharedFleetFacts["roles"] = {
    status: "unreadable",
    reason: hsm ? "a Managed HSM grants access in its own local RBAC" : vault.status === "unreadable" ? `the vault could not be read: ${vault.reason}` : "the vault was not found in the rotation's subscriptions",
  };
  if (!hsm && vault.status === "found") {
    const vaultSubscription = /^\/subscriptions\/([^/]+)\//i.exec(vault.value.id)?.[1] ?? subscriptions[0]!;
    const listed = await deps.roleAssignments.allAtScope(vaultSubscription, vault.value.id);
    if (listed.status === "found") {
      roles = listed.value;
      rolesStatus = { status: "found" };
    } else if (listed.status === "unreadable") {
      if (listed.transient) throw new JobError({ code: "AzureUnavailable", message: `Azure did not answer the role assignment list: ${listed.reason}.`, target: request.keyUrl }, true);
      rolesStatus = { status: "unreadable", reason: listed.reason };
    }
  }
  const identities: SharedFleetFacts["identities"] = {};
  const uamiIds = [...new Set(services.flatMap((service) => service.userAssignedIdentityIds ?? []).map((id) => id.toLowerCase()))];
  await Promise.all(
    uamiIds.map(async (id) => {
      const ref = parseUserAssignedIdentityId(id);
      // Only identities in the rotation's subscriptions are read (the caller's allow-list); a child of another falls back to its own checks.
      if (!ref || !subscriptions.includes(ref.subscriptionId.toLowerCase())) return;
      const fact = await deps.identities.userAssignedIdentity(ref);
      identities[id] = fact.status === "found" ? { principalId: fact.value.principalId } : { status: fact.status, ...(fact.status === "unreadable" ? { reason: fact.reason } : {}) };
    }),
  );
  await job.fleets.saveSharedFacts(job.jobId, { key: keyFact, vault, roles: rolesStatus, identities }, roles);
  const warnings = checks.filter((check) => check.status === "Warning");
  return {
    message:
      `Target key checked once for the fleet: ${checks.filter((check) => check.status === "Passed").length} passed` +
      (warnings.length ? `; ${warnings.length} warning(s): ${warnings.map((check) => `${check.id}: ${check.message}`).join(" ").replace(/\.$/, "")}` : "") +
      `. Role assignments at the vault ${rolesStatus.status === "found" ? `read once (${roles.size} principal(s))` : `not read (${rolesStatus.reason}): each service checks its own`}; ${uamiIds.length} user-assigned identit(ies). Region and key access are checked per service.`,
    output: { passed: checks.length - warnings.length, warnings: warnings.length },
  };
}

/**
 * A child is an ordinary RotateKey (in a fleet rollback, a SetKey) without an approval of its own (the
 * fleet was approved once, on its parent) and with the parent window's end: a child that cannot begin writing before it ends
 * Canceled/ChangeWindowMissed having written nothing (the worker's gate and the write claim see to it).
 */
function childData(parent: ChangeJobData, request: RotateKeyRequest | SetKeyRequest, parentJobId: string, target: string, rollbackOf?: string): ChangeJobData {
  const ticket = request.ticket ?? parent.request.ticket;
  const notAfter = parent.request.schedule?.notAfter;
  return {
    request: { ...request, ...(ticket ? { ticket } : {}), ...(notAfter ? { schedule: { notAfter } } : {}) },
    createdBy: parent.createdBy,
    ...(parent.createdById ? { createdById: parent.createdById } : {}),
    createdDateTime: new Date().toISOString(),
    ...(rollbackOf ? { rollbackOf } : {}),
    fleet: { parentJobId, targetKeyEncryptionKeyUrl: target },
  };
}

/**
 * Follows the children until the last one ends: their states from the job store every fleetPollMs,
 * percentComplete from how many ended, children still waiting for another change on their service added
 * again every few rounds, and a cancel of the parent passed on to every child that has not written. Ends
 * with the counts; FleetPartiallyFailed (one detail per failed child) when any failed.
 */
async function aggregate(
  steps: JobSteps,
  deps: WorkerDependencies,
  job: JobContext,
  request: FleetJobRequest,
  target: string | undefined,
  sizes: { move: number; skip: number },
  moved: readonly string[],
  children: Array<{ jobId: string; data: ChangeJobData }>,
  extra: Pick<JobResult, "notListed"> = {},
): Promise<JobResult> {
  const counts = await steps.run("Aggregate", async (context) => {
    const ended = new Map<string, ChildState>();
    const cancelSent = new Set<string>();
    let canceled: CancelRecord | undefined;
    let rounds = 0;
    let reported = "";
    for (;;) {
      const pending = children.filter((child) => !ended.has(child.jobId));
      const states = await job.fleets.childStates(pending.map((child) => child.jobId));
      for (const [jobId, state] of states) if (isChildEnded(state)) ended.set(jobId, state);
      const waiting = pending.filter((child) => states.get(child.jobId) === "Waiting");
      canceled ??= await job.cancelRequested();
      if (canceled) {
        // Children not added yet never start; the others are told to stop before their write.
        for (const child of waiting) ended.set(child.jobId, "Canceled");
        const running = pending.filter((child) => states.get(child.jobId) === "Running" && !cancelSent.has(child.jobId)).map((child) => child.jobId);
        if (running.length > 0) {
          await job.fleets.cancelChildren(running, canceled);
          for (const jobId of running) cancelSent.add(jobId);
        }
      } else if (waiting.length > 0 && rounds % 5 === 4) {
        await job.fleets.addChildren(waiting);
      }
      const counts = fleetCounts(sizes, ended.values());
      if (ended.size === children.length) break;
      const message = describe(counts, waiting.length);
      if (message !== reported) {
        reported = message;
        await context.reportFraction(Math.min(0.99, fleetFraction(counts)), message);
      }
      rounds += 1;
      await sleep(job.fleetPollMs);
    }
    const counts = fleetCounts(sizes, ended.values());
    const result: JobResult = { ...(target ? { targetKeyEncryptionKeyUrl: target } : {}), services: counts, ...(await previousVersions(deps, moved)), ...extra };
    const failure = fleetFailure(request.keyUrl, counts, counts.failed > 0 ? await failedChildren(job, children.map((child) => child.jobId)) : []);
    // A fleet that ends otherwise than Succeeded keeps its counts too.
    if (canceled || failure) await steps.recordResult(result);
    if (canceled) throw new JobCanceledError(canceled, `${counts.succeeded} service(s) had moved; the ${counts.canceled} child job(s) that had not written were canceled`);
    if (failure) throw new JobError(failure);
    return { output: result, message: describe(counts, 0) };
  });
  return steps.succeed({ ...counts, armWrites: counts.services?.succeeded ?? 0 });
}

function describe(counts: ReturnType<typeof fleetCounts>, waiting: number): string {
  const moving = counts.total - counts.skipped;
  const ended = counts.succeeded + counts.failed + counts.canceled;
  return (
    `${ended} of ${moving} child job(s) ended: ${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.canceled} canceled; ${counts.skipped} service(s) already on the target` +
    (waiting ? `; ${waiting} wait for another change on their service to end` : "") +
    "."
  );
}

/** The failed children's errors (their monitors, read in one round trip per batch). */
async function failedChildren(job: JobContext, jobIds: string[]): Promise<Array<{ fhirServiceId: string; jobId: string; error?: { code: string; message: string } }>> {
  const states = await job.fleets.childStates(jobIds);
  const monitors = await job.fleets.monitors(jobIds.filter((jobId) => states.get(jobId) === "Failed"));
  return monitors.filter((monitor) => monitor?.status === "Failed").map((monitor) => ({ fhirServiceId: monitor!.fhirServiceId ?? "", jobId: monitor!.id, ...(monitor!.error ? { error: monitor!.error } : {}) }));
}

/** Whether the versions the services moved from are still enabled (data encrypted with them needs them): each distinct one read once. */
async function previousVersions(deps: WorkerDependencies, moved: readonly string[]): Promise<{ previousVersionsDisabled?: string[] }> {
  const urls = [...new Set(moved)];
  const disabled: string[] = [];
  await Promise.all(
    urls.map(async (url) => {
      const parsed = parseKeyUrl(url);
      if (!parsed) return;
      const fact = await deps.keyVault.keyFacts(parsed);
      if (fact.status === "found" && !fact.value.enabled) disabled.push(url);
    }),
  );
  return disabled.length ? { previousVersionsDisabled: disabled } : {};
}
