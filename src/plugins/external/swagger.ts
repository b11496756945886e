import fp from "fastify-plugin";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";

export const OPENAPI_INFO = {
  title: "cmk-service",
  description:
    "Customer-managed keys for the FHIR service in Azure Health Data Services. Submit a change request, " +
    "follow its job to the end. Every /v1 route needs an API key (x-api-key) or an Entra ID token (Authorization: Bearer).",
  version: "1.0.0",
};

/** The OpenAPI document (from the route schemas) at /docs/json and Swagger UI at /docs. */
export default fp(
  async function swaggerPlugin(fastify: FastifyInstance) {
    await fastify.register(swagger, {
      openapi: {
        openapi: "3.0.3",
        info: OPENAPI_INFO,
        tags: [
          { name: "Change requests", description: "Submit changes to a FHIR service's key." },
          { name: "Jobs", description: "Follow the jobs that carry changes out." },
          { name: "FHIR services", description: "Encryption state and key-access diagnosis of a FHIR service." },
          { name: "Audit", description: "Who changed, or tried to change, which key." },
          { name: "Health", description: "Probes for operators." },
        ],
        components: {
          securitySchemes: {
            apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "An API key from CMK_API_KEYS (sandbox: printed at start)." },
            bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "An Entra ID access token for the API's audience." },
          },
        },
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === "string" ? json.$id : `def-${index}`) },
    });
    // staticCSP: the UI's own policy (same-origin scripts and styles) replaces the API's deny-all one.
    await fastify.register(swaggerUi, { routePrefix: "/docs", staticCSP: true, uiConfig: { docExpansion: "list", deepLinking: true } });
  },
  { name: "swagger" },
);
