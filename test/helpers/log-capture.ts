import { Writable } from "node:stream";
import pino, { type Logger } from "pino";

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger whose lines are kept, parsed, for a test to read. */
export function capturingLogger(level = "info"): { lines: LogLine[]; logger: Logger } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { lines, logger: pino({ level }, stream) };
}
