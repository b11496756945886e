import type { ChangeJobData, JobProgress } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";

/** A job as the store reads it: its data, execution record and status monitor. */
export interface ParsedJob {
  data: ChangeJobData;
  progress: JobProgress | undefined;
  monitor: JobStatusMonitor;
}

/**
 * The jobs read last, parsed, kept while what Redis holds for them is unchanged: a status read still
 * reads the job's record every time, but parses it (two JSON documents) and builds its monitor only
 * when one of the fields it is made from has changed. Pollers read the same job again and again, and a
 * finished job's record does not change at all. Bounded (least recently read out first); entries are
 * frozen, as every reader shares them.
 */
export class ParsedJobs {
  private readonly entries = new Map<string, { source: readonly string[]; job: ParsedJob }>();

  constructor(private readonly capacity = 1000) {}

  /**
   * The parsed job for `source` (the raw fields it is made from), from `parse` when they changed. `keep`
   * says whether a parsed job may be kept: not when its monitor also depends on the time of the read.
   */
  get(jobId: string, source: readonly string[], parse: () => ParsedJob | undefined, keep: (job: ParsedJob) => boolean = () => true): ParsedJob | undefined {
    const entry = this.entries.get(jobId);
    if (entry && sameStrings(entry.source, source)) {
      // Least recently read goes first: move it to the end.
      this.entries.delete(jobId);
      this.entries.set(jobId, entry);
      return entry.job;
    }
    const job = parse();
    this.entries.delete(jobId);
    // A job that does not exist is not kept: ids anyone can make up must not push real jobs out.
    if (!job) return undefined;
    deepFreeze(job);
    if (!keep(job)) return job;
    this.entries.set(jobId, { source, job });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return job;
  }
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}
