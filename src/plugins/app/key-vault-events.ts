import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { KeyVaultEventStore } from "../../job-store/key-vault-events.js";
import { KeyVaultEventService } from "../../services/key-vault-events.js";
import { approvalPolicyOf } from "../../config.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Event Grid deliveries of Key Vault events (`POST /v1/events/key-vault`). */
    keyVaultEvents: KeyVaultEventService;
  }
}

export default fp(
  async function keyVaultEvents(fastify: FastifyInstance) {
    const follow = fastify.config.CMK_FOLLOW_LATEST_KEY_VERSION ? { jobStore: fastify.jobStore, approvals: approvalPolicyOf(fastify.config) } : undefined;
    fastify.decorate("keyVaultEvents", new KeyVaultEventService(new KeyVaultEventStore(fastify.jobStore), fastify.log, follow));
  },
  { name: "key-vault-events", dependencies: ["redis"] },
);
