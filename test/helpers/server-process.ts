import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const SERVER = fileURLToPath(new URL("../../src/server.ts", import.meta.url));
export const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<number | string>;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the output once it matches `pattern`; rejects if the process exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` and resolves with the exit code and how long the process took to go. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | string; ms: number }>;
}

/** `src/server.ts` in its own process, as `npm start` runs it (tsx), with `env` on top of this process's. */
export function startServerProcess(env: Record<string, string | undefined>, options: { command?: string[] } = {}): ServerProcess {
  const [command, ...args] = options.command ?? [process.execPath, "--import", "tsx", SERVER];
  const child = spawn(command!, args, { cwd: REPOSITORY, env: withoutUndefined({ ...process.env, ...env }), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  return {
    child,
    exited,
    output: () => output,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (!match) return;
          done();
          resolve(match);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${output}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then((code) => {
          if (!listeners.has(check)) return;
          done();
          reject(new Error(`exited (${code}) before ${pattern}; output:\n${output}`));
        });
        check();
      }),
    stop: async (signal = "SIGINT") => {
      const started = Date.now();
      child.kill(signal);
      const code = await exited;
      return { code, ms: Date.now() - started };
    },
  };
}

function withoutUndefined(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}
