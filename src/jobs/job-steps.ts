import { UnrecoverableError, type Job } from "bullmq";
import type { JobError } from "../errors.js";
import {
  endStep,
  findStep,
  newProgress,
  startStep,
  updateStep,
  type ChangeJobData,
  type JobProgress,
  type StepPlan,
} from "../domain/job-record.js";
import type { JobResult } from "../schemas/jobs.js";
import { toJobError } from "../azure/azure-errors.js";

export interface StepOutcome<T> {
  message?: string;
  output?: T;
  /** `Skipped` when the step found nothing to do. */
  status?: "Succeeded" | "Skipped";
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
  ) {}

  static async start(job: Job<ChangeJobData>, plan: readonly StepPlan[]): Promise<JobSteps> {
    const saved = job.progress as JobProgress | number | undefined;
    const resumable = typeof saved === "object" && saved !== null && Array.isArray(saved.steps);
    const steps = new JobSteps(job, resumable ? saved : newProgress(plan, new Date()), job.data.request.fhirServiceId);
    if (!resumable) await steps.save();
    return steps;
  }

  get record(): JobProgress {
    return this.progress;
  }

  async run<T>(name: string, action: (context: StepContext) => Promise<StepOutcome<T>>): Promise<T> {
    const existing = findStep(this.progress, name);
    if (existing && (existing.status === "Succeeded" || existing.status === "Skipped")) return existing.output as T;

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
      throw await this.fail(name, toJobError(caught, { action: name, target: this.describeTarget }));
    }
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
    this.progress = endStep(this.progress, name, { status: "Failed", message: error.body.message }, new Date());
    this.progress = { ...this.progress, error: error.body };
    await this.save();
    return new UnrecoverableError(`${error.body.code}: ${error.body.message}`);
  }

  private async save(): Promise<void> {
    await this.job.updateProgress(this.progress as unknown as object);
  }
}
