import { Redis } from "ioredis";

/**
 * Redis cost of a piece of work, measured two ways:
 * - commands, as the server counts them in `INFO commandstats` (calls made inside Lua scripts
 *   included, MULTI and EXEC included), on a redis-server of the test's own so nothing else counts;
 * - round trips, as the client makes them: a pipeline or a MULTI (sent as one write, answered together)
 *   is one, and so are commands sent on one connection in one turn of the event loop, before any answer
 *   can have come (e.g. `Promise.all([redis.hgetall(a), redis.lrange(b, 0, -1)])`); a command sent after
 *   awaiting another's answer is a trip of its own.
 */

export interface CommandCount {
  /** Commands the server ran, by name (lower case). */
  byCommand: Record<string, number>;
  total: number;
}

async function commandStats(observer: Redis): Promise<Map<string, number>> {
  const text = await observer.info("commandstats");
  const calls = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

/** Runs `work` and returns what it cost on the server at `url` (which nothing else may use meanwhile). */
export async function countCommands<T>(url: string, work: () => Promise<T>): Promise<{ result: T; commands: CommandCount }> {
  const observer = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    const before = await commandStats(observer);
    const result = await work();
    const after = await commandStats(observer);
    const byCommand: Record<string, number> = {};
    let total = 0;
    for (const [name, calls] of after) {
      // The observer's own INFO calls are not the work's.
      const delta = calls - (before.get(name) ?? 0) - (name === "info" ? 1 : 0);
      if (delta <= 0) continue;
      byCommand[name] = delta;
      total += delta;
    }
    return { result, commands: { byCommand, total } };
  } finally {
    observer.disconnect();
  }
}

interface Sendable {
  sendCommand(command: { name: string }, stream?: unknown): unknown;
}

export interface RoundTripCounter {
  /** Round trips since the counter started (or was reset). */
  readonly count: number;
  /** What each round trip sent: one command name, or the names a pipeline/MULTI carried. */
  readonly trips: string[][];
  reset(): void;
  stop(): void;
}

/**
 * Counts the round trips `connections` make from now on (a pipeline or MULTI is one), in one list: a
 * job store's own connection and the one its BullMQ queues run on.
 */
export function countRoundTrips(...connections: Redis[]): RoundTripCounter {
  let trips: string[][] = [];
  const pipelines = new WeakMap<object, string[]>();
  const together = new Map<Sendable, string[]>();
  const count = (client: Sendable): (() => void) => {
    const original = client.sendCommand;
    client.sendCommand = function (this: unknown, command: { name: string }, stream?: unknown) {
      if (stream && typeof stream === "object" && (stream as { isPipeline?: boolean }).isPipeline) {
        let trip = pipelines.get(stream);
        if (!trip) {
          trip = [];
          pipelines.set(stream, trip);
          trips.push(trip);
        }
        trip.push(command.name);
      } else {
        // Sent in the same synchronous run as the trip still open on this connection: the same trip.
        // The trip closes at the next microtask, so commands sent after any await count apart (a
        // conservative count: no answer can arrive before the event loop turns).
        let trip = together.get(client);
        if (!trip) {
          trip = [];
          together.set(client, trip);
          trips.push(trip);
          queueMicrotask(() => together.delete(client));
        }
        trip.push(command.name);
      }
      return original.call(this, command, stream);
    };
    return () => {
      client.sendCommand = original;
    };
  };
  const restore = connections.map((redis) => count(redis as unknown as Sendable));
  return {
    get count() {
      return trips.length;
    },
    get trips() {
      return trips;
    },
    reset() {
      trips = [];
    },
    stop() {
      for (const undo of restore) undo();
    },
  };
}
