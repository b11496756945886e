import { gunzip, gzip } from "node:zlib";
import { promisify } from "node:util";
import type { ComplianceReport } from "../schemas/compliance.js";
import type { ReportStats } from "../domain/compliance/report.js";
import { complianceKeys } from "./keys.js";
import type { StoreContext } from "./store-context.js";

const zip = promisify(gzip);
const unzip = promisify(gunzip);

/**
 * Compliance reports in the job store (keys.ts `complianceKeys`): one value per report, gzipped JSON (a
 * 1,000-service report is a few hundred KB of JSON, a tenth of that zipped). A scan writes its report
 * aside first; only when it is complete does it replace the latest, so a reader never sees half a report
 * and a failed scan leaves the previous one in place. The follow markers (one per FHIR service and target
 * key version, SET NX) make sure following the latest version never starts two RotateKeys for the same move.
 */
export class ComplianceReports {
  private readonly keys: ReturnType<typeof complianceKeys>;

  constructor(private readonly store: StoreContext) {
    this.keys = complianceKeys(store.keys.prefix);
  }

  /** The scan's report, kept aside until `publish` (as long as the job's own records). */
  async savePending(jobId: string, report: ComplianceReport): Promise<void> {
    await this.store.redis.set(this.keys.pending(jobId), await zip(JSON.stringify(report)), "PX", this.store.keepMs);
  }

  /** Makes the scan's saved report the latest, with its stats (its size in bytes, zipped); false when it is gone. */
  async publish(jobId: string, stats: (report: ComplianceReport) => ReportStats): Promise<number | false> {
    const zipped = await this.store.redis.getBuffer(this.keys.pending(jobId));
    if (!zipped) return false;
    const report = JSON.parse((await unzip(zipped)).toString("utf8")) as ComplianceReport;
    // One MULTI: the report and its stats change together; the pending copy is forgotten (a retried Store finds the latest there).
    const results = await this.store.redis.multi().set(this.keys.latest, zipped).set(this.keys.stats, JSON.stringify(stats(report))).del(this.keys.pending(jobId)).exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
    return zipped.length;
  }

  /** The latest report's stats (metrics); undefined before the first scan. */
  async stats(): Promise<ReportStats | undefined> {
    const text = await this.store.redis.get(this.keys.stats);
    return text ? (JSON.parse(text) as ReportStats) : undefined;
  }

  /** The scan's report as saved (before publish), or the latest one when it was published already. */
  async pending(jobId: string): Promise<ComplianceReport | undefined> {
    const zipped = await this.store.redis.getBuffer(this.keys.pending(jobId));
    return zipped ? (JSON.parse((await unzip(zipped)).toString("utf8")) as ComplianceReport) : undefined;
  }

  /** The latest finished scan's report; undefined before the first. */
  async latest(): Promise<ComplianceReport | undefined> {
    const zipped = await this.store.redis.getBuffer(this.keys.latest);
    return zipped ? (JSON.parse((await unzip(zipped)).toString("utf8")) as ComplianceReport) : undefined;
  }

  /**
   * Claims the moves of services to key versions (SET NX, one pipeline): true for each move not claimed
   * before. Kept as long as jobs are: a move that failed is tried again only after that.
   */
  async claimFollow(moves: ReadonlyArray<{ fhirServiceId: string; keyVersionUrl: string }>): Promise<boolean[]> {
    if (moves.length === 0) return [];
    const pipeline = this.store.redis.pipeline();
    for (const move of moves) pipeline.set(this.keys.followed(move.fhirServiceId, move.keyVersionUrl), "1", "PX", this.store.keepMs, "NX");
    const results = (await pipeline.exec()) ?? [];
    return moves.map((_, i) => {
      const [error, reply] = results[i] ?? [new Error("discarded"), null];
      if (error) throw error;
      return reply === "OK";
    });
  }

  /** Gives claims back (the RotateKey could not be added: ChangeInProgress on the service, Redis trouble). */
  async releaseFollow(moves: ReadonlyArray<{ fhirServiceId: string; keyVersionUrl: string }>): Promise<void> {
    if (moves.length === 0) return;
    await this.store.redis.del(...moves.map((move) => this.keys.followed(move.fhirServiceId, move.keyVersionUrl)));
  }
}
