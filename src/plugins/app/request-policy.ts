import fp from "fastify-plugin";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { SubscriptionNotAllowedError, ValidationFailedError } from "../../errors.js";
import { maySubscription } from "../../security/principal.js";
import { requestedSubscriptions } from "../../security/subscription-scope.js";
import { callbackUrlProblem, type CallbackUrlPolicy } from "../../security/callback-url.js";

declare module "fastify" {
  interface FastifyInstance {
    /** preHandler of /v1 routes: the credential's subscription allow-list and the callback URL policy. */
    enforceRequestPolicy(request: FastifyRequest): Promise<void>;
  }
}

/**
 * Rules that need the validated request: which subscriptions it names (403 outside the credential's
 * allow-list, checked first so a refused caller learns nothing more) and where a callback would go.
 */
export default fp<{ callbackUrls: CallbackUrlPolicy }>(
  async function requestPolicy(fastify: FastifyInstance, options) {
    fastify.decorate("enforceRequestPolicy", async function enforceRequestPolicy(request: FastifyRequest) {
      const principal = request.principal;
      if (principal) {
        const refused = requestedSubscriptions(request).find((subscriptionId) => !maySubscription(principal, subscriptionId));
        if (refused) throw new SubscriptionNotAllowedError(refused, principal.subscriptions);
      }
      const callbackUrl = (request.body as { callbackUrl?: unknown } | undefined)?.callbackUrl;
      if (typeof callbackUrl === "string") {
        const problem = callbackUrlProblem(callbackUrl, options.callbackUrls);
        if (problem) throw new ValidationFailedError([{ path: "/body/callbackUrl", message: problem }]);
      }
    });
  },
  { name: "request-policy" },
);
