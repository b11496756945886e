import { request as httpRequest, type IncomingMessage } from "node:http";
import { KEYS } from "./app.js";

export interface SseEvent {
  id: string;
  monitor: { id: string; status: string; currentStep?: string; steps: Array<{ name: string; status: string }> };
}

export interface SseStream {
  response: IncomingMessage;
  events: SseEvent[];
  comments: string[];
  ended: Promise<void>;
  /** Resolves once `count` events have arrived. */
  waitFor(count: number): Promise<void>;
  close(): void;
}

/** A real HTTP client for text/event-stream (not inject): parses `id:`/`data:` events and `:` comments. */
export function openStream(base: string, path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { headers: { "x-api-key": KEYS.reader, accept: "text/event-stream", ...headers } }, (response) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters: Array<{ count: number; resolve: () => void }> = [];
      let buffer = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffer += chunk;
        let split: number;
        while ((split = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          let id = "";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) events.push({ id, monitor: JSON.parse(data) });
        }
        for (const waiter of [...waiters]) if (events.length >= waiter.count) waiter.resolve();
      });
      const ended = new Promise<void>((done) => response.on("close", () => done()));
      resolve({
        response,
        events,
        comments,
        ended,
        waitFor: (count) => (events.length >= count ? Promise.resolve() : new Promise((done) => waiters.push({ count, resolve: done }))),
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}
