import type { ChangeJobData, CancelRecord } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { FleetService, ChildState } from "../domain/fleet-plan.js";
import type { FleetChildRollback } from "../domain/rollback.js";
import type { ParsedJob } from "./parsed-jobs.js";
import type { KeyFacts, RoleAssignmentFacts, VaultFacts, Fact } from "../domain/checks/facts.js";
import { END_STATE_FIELDS, endStateFromFields } from "./bullmq-layout.js";
import type { CancelOutcome } from "./cancel.js";
import { queueIndexJob } from "./job-index.js";
import { exclusivityId, type ChangesQueue } from "./queue.js";
import type { StoreContext } from "./store-context.js";

/**
 * A fleet rotation's own records, beside its job (keys.ts: `{prefix}:jobs:{id}:fleet` and
 * `…:fleet:roles`), kept as long as the job: what discovery found (written once, so a parent that resumes
 * does not discover again), the target it resolved, the intent of a new key version (so a retried parent
 * makes it once), and the pre-flight facts every child shares (the key, its vault, and the role
 * assignments at the vault by principal), so that each is read from Azure once per fleet.
 *
 * Children are added in batches with deterministic ids (domain/fleet-plan.ts) and BullMQ's
 * deduplication per FHIR service: adding a child twice adds nothing, and a child whose service has
 * another change running is not added until that change ends (the parent tries again). The parent follows
 * its children with four hash fields each (one pipeline per batch), never their progress.
 */

/** The key and vault facts a fleet's children share, and whether the role assignments at the vault could be listed. */
export interface SharedFleetFacts {
  key: Fact<KeyFacts>;
  vault: Fact<VaultFacts>;
  /** `found`: every principal's assignments at the vault are in the roles hash (none: not there). */
  roles: { status: "found" } | { status: "unreadable"; reason: string };
  /** Principal ids of the user-assigned identities the fleet's services use, by lower-case ARM id. */
  identities: Record<string, { principalId: string } | { status: "missing" | "unreadable"; reason?: string }>;
}

export interface NewVersionIntent {
  /** Every version of the key before the new one was asked for. */
  versionsBefore: string[];
  dateTime: string;
}

/** What the fleet store needs of the job store (kept as an interface: no import cycle). */
export interface FleetStoreContext extends StoreContext {
  readonly changes: ChangesQueue;
  requestCancel(jobId: string, record: CancelRecord): Promise<CancelOutcome>;
  recordJobEnd(jobId: string): Promise<unknown>;
  readMonitors(jobIds: readonly string[]): Promise<Array<JobStatusMonitor | undefined>>;
  readJobs(jobIds: readonly string[]): Promise<Array<ParsedJob | undefined>>;
}

const DATE_FIELDS = new Set(["notBefore", "expiresOn", "createdOn"]);
/** JSON of facts, with their dates back as Date objects. */
function parseFacts<T>(text: string): T {
  return JSON.parse(text, (name, value: unknown) => (DATE_FIELDS.has(name) && typeof value === "string" ? new Date(value) : value)) as T;
}

/** Children added per round trip, and role assignments written per HSET. */
const BATCH = 200;

export class FleetStore {
  constructor(private readonly store: FleetStoreContext) {}

  private async hset(jobId: string, values: Record<string, string>): Promise<void> {
    const key = this.store.keys.fleet(jobId);
    await this.store.redis.multi().hset(key, values).pexpire(key, this.store.keepMs).exec();
  }

  /**
   * Discovery's result (services on the key, its summary and what the step outputs), written once; a
   * resumed parent reads it instead of listing again.
   */
  saveServices(jobId: string, services: readonly FleetService[], summary: string, discovery: string): Promise<void> {
    return this.hset(jobId, { services: JSON.stringify(services), summary, discovery });
  }

  async services(jobId: string): Promise<{ services: FleetService[]; summary: string; discovery: string } | undefined> {
    const [services, summary, discovery] = await this.store.redis.hmget(this.store.keys.fleet(jobId), "services", "summary", "discovery");
    return services ? { services: JSON.parse(services) as FleetService[], summary: summary ?? "", discovery: discovery ?? "{}" } : undefined;
  }

  /** Children's status monitors (for the details of the failed ones). */
  async monitors(jobIds: readonly string[]): Promise<Array<JobStatusMonitor | undefined>> {
    const monitors: Array<JobStatusMonitor | undefined> = [];
    for (let i = 0; i < jobIds.length; i += BATCH) monitors.push(...(await this.store.readMonitors(jobIds.slice(i, i + BATCH))));
    return monitors;
  }

  /**
   * Records that a new version is about to be made, unless an earlier attempt did so first (HSETNX):
   * returns the intent in force, so a resumed parent adopts the version the earlier attempt made.
   */
  async newVersionIntent(jobId: string, intent: NewVersionIntent): Promise<{ intent: NewVersionIntent; earlier: boolean }> {
    const key = this.store.keys.fleet(jobId);
    const results = (await this.store.redis
      .multi()
      .hsetnx(key, "newVersionIntent", JSON.stringify(intent))
      .pexpire(key, this.store.keepMs)
      .hget(key, "newVersionIntent")
      .exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed || results.length < 3) throw failed?.[0] ?? new Error("transaction discarded");
    return { intent: JSON.parse(String(results[2]![1])) as NewVersionIntent, earlier: results[0]![1] === 0 };
  }

  /** The pre-flight facts every child of the fleet uses, and the role assignments at the key's vault by principal. */
  async saveSharedFacts(jobId: string, shared: SharedFleetFacts, roles: ReadonlyMap<string, RoleAssignmentFacts[]>): Promise<void> {
    const rolesKey = this.store.keys.fleetRoles(jobId);
    const entries = [...roles].map(([principal, assignments]) => [principal.toLowerCase(), JSON.stringify(assignments)] as const);
    const pipeline = this.store.redis.pipeline().del(rolesKey);
    for (let i = 0; i < entries.length; i += BATCH) pipeline.hset(rolesKey, Object.fromEntries(entries.slice(i, i + BATCH)));
    pipeline.pexpire(rolesKey, this.store.keepMs);
    await pipeline.exec();
    await this.hset(jobId, { shared: JSON.stringify(shared) });
  }

  /**
   * What one child needs of the shared facts, in one round trip: the key, vault and identities, and its
   * principal's role assignments at the vault (none when the listing did not name it).
   */
  async childFacts(parentJobId: string, principalId: string | undefined): Promise<{ shared: SharedFleetFacts; roles: RoleAssignmentFacts[] } | undefined> {
    const pipeline = this.store.redis.pipeline().hget(this.store.keys.fleet(parentJobId), "shared");
    if (principalId) pipeline.hget(this.store.keys.fleetRoles(parentJobId), principalId.toLowerCase());
    const results = (await pipeline.exec()) ?? [];
    const shared = results[0]?.[1] as string | null | undefined;
    if (!shared) return undefined;
    const roles = results[1]?.[1] as string | null | undefined;
    return { shared: parseFacts<SharedFleetFacts>(shared), roles: roles ? parseFacts<RoleAssignmentFacts[]>(roles) : [] };
  }

  /**
   * Adds the children (deterministic ids, exclusivity per FHIR service) in batches, each with its index
   * entries. Returns the ids that exist now (added, or added by an earlier attempt) and those whose
   * service has another change running (not added; try again later).
   */
  async addChildren(children: ReadonlyArray<{ jobId: string; data: ChangeJobData }>): Promise<{ added: string[]; waiting: string[] }> {
    const added: string[] = [];
    const waiting: string[] = [];
    for (let i = 0; i < children.length; i += BATCH) {
      const batch = children.slice(i, i + BATCH);
      const jobs = await this.store.changes.addBulk(
        batch.map(({ jobId, data }) => ({
          name: data.request.operation,
          data,
          opts: { jobId, deduplication: { id: exclusivityId(data.request.fhirServiceId!) } },
        })),
      );
      const pipeline = this.store.redis.pipeline();
      batch.forEach(({ jobId, data }, index) => {
        if (jobs[index]?.id === jobId) {
          added.push(jobId);
          queueIndexJob(this.store, pipeline, jobId, data);
        } else {
          waiting.push(jobId);
        }
      });
      await pipeline.exec();
    }
    return { added, waiting };
  }

  /** The children's states (Waiting: not added yet), from four hash fields each, in batches of one round trip. */
  async childStates(jobIds: readonly string[]): Promise<Map<string, ChildState>> {
    const states = new Map<string, ChildState>();
    for (let i = 0; i < jobIds.length; i += 1000) {
      const batch = jobIds.slice(i, i + 1000);
      const pipeline = this.store.redis.pipeline();
      for (const jobId of batch) pipeline.hmget(this.store.changes.toKey(jobId), ...END_STATE_FIELDS);
      const results = (await pipeline.exec()) ?? [];
      batch.forEach((jobId, index) => {
        const [error, values] = results[index] ?? [new Error("discarded"), null];
        if (error) throw error;
        const state = endStateFromFields(values as Array<string | null>);
        states.set(jobId, state === "missing" ? "Waiting" : state === "unfinished" ? "Running" : state);
      });
    }
    return states;
  }

  /** The ids of every child a fleet rotation added (its parent index). */
  async childIds(parentJobId: string): Promise<string[]> {
    const members = await this.store.redis.zrange(this.store.keys.indexParent(parentJobId), 0, -1);
    return members.map((member) => member.slice(member.indexOf(":") + 1));
  }

  /** Children's data, execution records and monitors, in batches of one round trip (what a fleet rollback undoes). */
  async childJobs(jobIds: readonly string[]): Promise<ParsedJob[]> {
    const jobs: ParsedJob[] = [];
    for (let i = 0; i < jobIds.length; i += BATCH) jobs.push(...(await this.store.readJobs(jobIds.slice(i, i + BATCH))).filter((job): job is ParsedJob => job !== undefined));
    return jobs;
  }

  /**
   * A fleet rollback's plan (its children's SetKeys and how many of the original's children had nothing
   * to restore), written once by its Discover step; a resumed rollback reads it instead of planning again.
   */
  saveRollbacks(jobId: string, plan: { rollbacks: FleetChildRollback[]; skipped: number; summary: string }): Promise<void> {
    return this.hset(jobId, { rollbacks: JSON.stringify(plan) });
  }

  async rollbacks(jobId: string): Promise<{ rollbacks: FleetChildRollback[]; skipped: number; summary: string } | undefined> {
    const saved = await this.store.redis.hget(this.store.keys.fleet(jobId), "rollbacks");
    return saved ? (JSON.parse(saved) as { rollbacks: FleetChildRollback[]; skipped: number; summary: string }) : undefined;
  }

  /** Cancels every unfinished child of a fleet rotation (those its parent index names). */
  async cancelChildrenOf(parentJobId: string, record: CancelRecord): Promise<number> {
    const jobIds = await this.childIds(parentJobId);
    const states = await this.childStates(jobIds);
    return this.cancelChildren(jobIds.filter((jobId) => states.get(jobId) === "Running"), record);
  }

  /**
   * Cancels the children that have not written (the cancel of one job, for each): a child no worker holds
   * ends Canceled now (and its end is recorded here, as the API does for a job it cancels); one a worker
   * holds ends Canceled before its next write; one that has written goes on. Returns how many were
   * canceled or asked to stop.
   */
  async cancelChildren(jobIds: readonly string[], record: CancelRecord): Promise<number> {
    let stopped = 0;
    for (let i = 0; i < jobIds.length; i += 50) {
      const outcomes = await Promise.all(jobIds.slice(i, i + 50).map(async (jobId) => {
        const outcome = await this.store.requestCancel(jobId, record);
        if (outcome.kind === "canceled") await this.store.recordJobEnd(jobId);
        return outcome;
      }));
      stopped += outcomes.filter((outcome) => outcome.kind === "canceled" || outcome.kind === "requested" || outcome.kind === "alreadyRequested").length;
    }
    return stopped;
  }
}
