/**
 * Baseline B1 of `npm run bench` (its own process): a bare Fastify route that answers one HGETALL of a
 * job-sized record, on the project's own Fastify and ioredis. No authentication, rate limit, headers
 * or logging: the floor any status read of the service is compared with.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=4000 KEY_PREFIX=bench-b1:jobs node --import tsx scripts/bench/baseline-status-server.ts
 * (`npm run bench` runs it transpiled to plain JavaScript, as the service runs compiled.)
 */
import Fastify from "fastify";
import { Redis } from "ioredis";

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = process.env.KEY_PREFIX ?? "bench-b1:jobs";
const app = Fastify({ logger: false });

app.get<{ Params: { id: string } }>("/jobs/:id", async (request, reply) => {
  const record = await redis.hgetall(`${prefix}:${request.params.id}`);
  if (record.monitor === undefined) return reply.code(404).send();
  return reply.type("application/json").send(record.monitor);
});

await app.listen({ port: Number(process.env.PORT ?? 0), host: "127.0.0.1" });
console.log(`baseline status server listening on ${JSON.stringify(app.server.address())}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void app.close().finally(() => {
      redis.disconnect();
      process.exit(0);
    });
  });
}
