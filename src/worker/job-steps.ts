import { UnrecoverableError, type Job } from "bullmq";
import type { JobError } from "../errors.js";
import {
  canceledError,
  canceledProgress,
  endStep,
  findStep,
  jobTarget,
  newProgress,
  startStep,
  updateStep,
  type ChangeJobData,
  type JobProgress,
  type ReplacedSettings,
  type StepPlan,
} from "../domain/job-record.js";
import type { JobResult } from "../schemas/jobs.js";
import { toJobError } from "../azure/azure-errors.js";
import { JobCanceledError } from "../job-store/cancel.js";

export interface StepOutcome<T> {
  message?: string;
  output?: T;
  /** `Skipped` when the step found nothing to do. */
  status?: "Succeeded" | "Skipped";
}

/**
 * What the worker adds around a job's steps (all optional): the cancel checks (job-store/cancel.ts) and a
 * listener told of every saved record (the job's event log).
 */
export interface JobHooks {
  /** Throws JobCanceledError when a cancel was asked for; called before each step. */
  throwIfCanceled?(): Promise<void>;
  /** Atomically: throws JobCanceledError when canceled, else records that `what` writes (or ends the job) now. */
  claim?(what: string): Promise<void>;
  /** Called after each save of the record. */
  saved?(progress: JobProgress): Promise<void>;
}

export interface StepContext {
  /** Reports how much of a long step is done (0-1), so percentComplete keeps rising. */
  reportFraction(fraction: number, message?: string): Promise<void>;
}

/**
 * Runs a job's named steps and keeps its execution record (the BullMQ job's progress) current. A step
 * that already succeeded in an earlier attempt is not run again: its saved output is returned instead,
 * which is what makes a retried or taken-over job resume where it stopped.
 */
export class JobSteps {
  private constructor(
    private readonly job: Job<ChangeJobData>,
    private progress: JobProgress,
    private readonly describeTarget: string,
    private readonly hooks: JobHooks = {},
  ) {}

  static async start(job: Job<ChangeJobData>, plan: readonly StepPlan[], hooks: JobHooks = {}): Promise<JobSteps> {
    const saved = job.progress as JobProgress | number | undefined;
    const resumable = typeof saved === "object" && saved !== null && Array.isArray(saved.steps);
    const steps = new JobSteps(job, resumable ? saved : newProgress(plan, new Date()), jobTarget(job.data.request), hooks);
    if (!resumable) await steps.save();
    return steps;
  }

  get record(): JobProgress {
    return this.progress;
  }

  async run<T>(name: string, action: (context: StepContext) => Promise<StepOutcome<T>>): Promise<T> {
    const existing = findStep(this.progress, name);
    if (existing && (existing.status === "Succeeded" || existing.status === "Skipped")) return existing.output as T;

    try {
      await this.hooks.throwIfCanceled?.();
    } catch (caught) {
      if (caught instanceof JobCanceledError) throw await this.cancel(caught);
      throw caught;
    }
    this.progress = startStep(this.progress, name, new Date());
    await this.save();
    const context: StepContext = {
      reportFraction: async (fraction, message) => {
        this.progress = updateStep(this.progress, name, { fraction, ...(message ? { message } : {}) }, new Date());
        await this.save();
      },
    };
    try {
      const outcome = await action(context);
      this.progress = endStep(
        this.progress,
        name,
        { status: outcome.status ?? "Succeeded", message: outcome.message, output: outcome.output },
        new Date(),
      );
      await this.save();
      return outcome.output as T;
    } catch (caught) {
      if (caught instanceof JobCanceledError) throw await this.cancel(caught);
      throw await this.fail(name, toJobError(caught, { action: name, target: this.describeTarget }));
    }
  }

  /**
   * Call right before sending a write to Azure: throws JobCanceledError when the job was canceled, and
   * otherwise makes later cancels answer 409 (one atomic step, see job-store/cancel.ts).
   */
  async beforeWrite(): Promise<void> {
    await this.hooks.claim?.(this.progress.currentStep ?? "unknown");
  }

  /**
   * Records what the job's writes replace (what a rollback restores), before the first of them: kept with
   * the record's next save, which every write step makes when it starts. The first record stays.
   */
  noteReplaced(replaced: ReplacedSettings): void {
    if (!this.progress.replaced) this.progress = { ...this.progress, replaced };
  }

  /**
   * Throws JobCanceledError when a cancel was asked for, without claiming anything: for a job whose
   * writes do not make it uncancellable (a fleet rotation stays cancellable to stop its children).
   */
  async throwIfCanceled(): Promise<void> {
    await this.hooks.throwIfCanceled?.();
  }

  /** Keeps `result` with the record before the job ends otherwise than Succeeded (a fleet's counts when it fails or is canceled). */
  async recordResult(result: JobResult): Promise<void> {
    this.progress = { ...this.progress, result, lastUpdatedDateTime: new Date().toISOString() };
    await this.save();
  }

  /** Marks the named steps Skipped (when they have not run), saying why. */
  async skip(names: readonly string[], message: string): Promise<void> {
    const now = new Date();
    for (const name of names) {
      if (findStep(this.progress, name)?.status === "NotStarted") this.progress = endStep(this.progress, name, { status: "Skipped", message }, now);
    }
    await this.save();
  }

  /** Marks every step that has not run as Skipped, e.g. after a dry run or when nothing needs changing. */
  async skipRemaining(message: string): Promise<void> {
    await this.skip(this.progress.steps.filter((step) => step.status === "NotStarted").map((step) => step.name), message);
  }

  async succeed(result: JobResult): Promise<JobResult> {
    try {
      await this.hooks.claim?.("Succeeded");
    } catch (caught) {
      if (caught instanceof JobCanceledError) throw await this.cancel(caught);
      throw caught;
    }
    this.progress = { ...this.progress, result, lastUpdatedDateTime: new Date().toISOString() };
    await this.save();
    return result;
  }

  /**
   * Records a step failure. A retryable error with attempts left leaves the step Running with the reason,
   * and BullMQ retries the job; otherwise the job ends Failed with the typed error.
   */
  private async fail(name: string, error: JobError): Promise<Error> {
    const attempt = this.job.attemptsMade + 1;
    const maxAttempts = this.job.opts.attempts ?? 1;
    if (error.retryable && attempt < maxAttempts) {
      const now = new Date();
      this.progress = updateStep(this.progress, name, { message: `Attempt ${attempt} of ${maxAttempts} failed (${error.body.code}); retrying.` }, now);
      const retry = { attempt, step: name, code: error.body.code, message: error.body.message, dateTime: now.toISOString() };
      this.progress = { ...this.progress, retries: [...(this.progress.retries ?? []), retry] };
      await this.save();
      return error;
    }
    try {
      await this.hooks.claim?.("Failed");
    } catch (caught) {
      if (caught instanceof JobCanceledError) return this.cancel(caught);
      throw caught;
    }
    this.progress = endStep(this.progress, name, { status: "Failed", message: error.body.message }, new Date());
    this.progress = { ...this.progress, error: error.body };
    await this.save();
    return new UnrecoverableError(`${error.body.code}: ${error.body.message}`);
  }

  /** Ends the job Canceled: steps that did not finish are Skipped, nothing more runs. */
  private async cancel(canceled: JobCanceledError): Promise<Error> {
    this.progress = canceledProgress(this.progress, [], canceled.record, this.describeTarget, new Date(), canceledError(canceled.record, this.describeTarget, canceled.detail));
    await this.save();
    return new UnrecoverableError(`Canceled: ${this.progress.error?.message ?? canceled.message}`);
  }

  private async save(): Promise<void> {
    await this.job.updateProgress(this.progress as unknown as object);
    await this.hooks.saved?.(this.progress);
  }
}
