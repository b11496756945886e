import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** A child process of the benchmark: its output goes to a log file, so a chatty service costs no pipe reads here. */
export interface BenchProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves once the process is gone. */
  exited: Promise<void>;
  /** The last lines of its log (for error messages). */
  logTail(lines?: number): string;
  /** Resolves once its log matches `pattern`; rejects when it exits first or after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** `signal` (SIGTERM by default), then SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Resident set size of a process in MB, from /proc (Linux); undefined when it cannot be read. */
export function rssMb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `intervalMs` until `stop()`, which answers the largest and last sample. */
export function sampleRss(pid: number, intervalMs = 200): { stop(): { maxMb: number | undefined; lastMb: number | undefined } } {
  let maxMb: number | undefined;
  let lastMb: number | undefined;
  const take = () => {
    lastMb = rssMb(pid) ?? lastMb;
    if (lastMb !== undefined && (maxMb === undefined || lastMb > maxMb)) maxMb = lastMb;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { maxMb, lastMb };
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Every process the benchmark starts, so each one is stopped however the run ends: `stopAll()` on the
 * normal path and on errors or signals, and a synchronous SIGKILL of whatever is left when this process exits.
 */
export class ProcessGroup {
  private readonly running = new Set<BenchProcess>();

  constructor(private readonly logDir: string) {
    process.once("exit", () => {
      for (const started of this.running) started.child.kill("SIGKILL");
    });
  }

  start(name: string, args: string[], env: Record<string, string>, options: { cwd?: string } = {}): BenchProcess {
    const running = this.running;
    const logFile = join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, "a");
    const child = spawn(process.execPath, args, { cwd: options.cwd, env: { ...process.env, ...env }, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`${name} did not start`);
    let gone = false;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const logTail = (lines = 20) => {
      try {
        return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    };
    const started: BenchProcess = {
      name,
      pid: child.pid,
      child,
      exited,
      logTail,
      async waitForLog(pattern, timeoutMs = 60_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          if (pattern.test(logTail(Number.MAX_SAFE_INTEGER))) return;
          if (gone) throw new Error(`${name} exited before ${pattern}:\n${logTail()}`);
          if (Date.now() > deadline) throw new Error(`${name}: no ${pattern} within ${timeoutMs} ms:\n${logTail()}`);
          await sleep(100);
        }
      },
      async stop(signal = "SIGTERM", graceMs = 10_000) {
        if (!gone) {
          child.kill(signal);
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          await exited;
          clearTimeout(timer);
        }
        running.delete(started);
      },
    };
    void exited.then(() => {
      gone = true;
    });
    this.running.add(started);
    return started;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map((started) => started.stop("SIGKILL")));
  }
}
