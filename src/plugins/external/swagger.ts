import { createHash } from "node:crypto";
import fp from "fastify-plugin";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { PACKAGE_VERSION } from "../../package-version.js";
import { withDiscriminatorMappings } from "../../schemas/discriminator-mappings.js";

export const OPENAPI_INFO = {
  title: "cmk-service",
  description:
    "Customer-managed keys for the FHIR service in Azure Health Data Services. Submit a change request, " +
    "follow its job to the end. Every /v1 route needs an API key (x-api-key) or an Entra ID token (Authorization: Bearer).",
  version: PACKAGE_VERSION,
};

/** The OpenAPI document (from the route schemas) at /docs/json and Swagger UI at /docs. */
export default fp(
  async function swaggerPlugin(fastify: FastifyInstance) {
    await fastify.register(swagger, {
      openapi: {
        openapi: "3.0.3",
        info: OPENAPI_INFO,
        // Relative: "Try it out" calls the host that served the document, whatever address it was reached on.
        servers: [{ url: "/", description: "This service." }],
        tags: [
          { name: "Change requests", description: "Submit changes to a FHIR service's key." },
          { name: "Jobs", description: "Follow the jobs that carry changes out." },
          { name: "FHIR services", description: "Encryption state and key-access diagnosis of a FHIR service." },
          { name: "Audit", description: "Who changed, or tried to change, which key." },
          { name: "Health", description: "Probes for operators." },
          { name: "Self-check", description: "What the service's own identity may do in Azure." },
        ],
        components: {
          securitySchemes: {
            apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "An API key from CMK_API_KEYS (sandbox: printed at start)." },
            bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "An Entra ID access token for the API's audience." },
          },
        },
      },
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === "string" ? json.$id : `def-${index}`) },
      transformObject: (document) => withDiscriminatorMappings("openapiObject" in document ? document.openapiObject : document.swaggerObject),
    });
    // Under /docs the UI's own policy (swaggerUiCsp) replaces the API's deny-all one. Not swagger-ui's
    // staticCSP: that always says upgrade-insecure-requests, which blanks the page over plain http.
    await fastify.register(async function swaggerUiWithCsp(docs: FastifyInstance) {
      docs.addHook("onRequest", async (request, reply) => {
        reply.header("content-security-policy", swaggerUiCsp(request.protocol === "https"));
      });
      await docs.register(swaggerUi, { routePrefix: "/docs", staticCSP: false, uiConfig: { docExpansion: "list", deepLinking: true } });
    });
  },
  { name: "swagger" },
);

/**
 * The one inline style Swagger UI needs: the `<style>` inside the top bar's SVG logo
 * (swagger-ui-standalone-preset.js), drawn before @fastify/swagger-ui swaps in its own logo. Without it
 * the browser logs a CSP violation on every page load. test/plugins/helmet.test.ts checks that the
 * installed bundle still has exactly this text.
 */
export const SWAGGER_LOGO_STYLE = ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}";
const SWAGGER_LOGO_STYLE_HASH = `'sha256-${createHash("sha256").update(SWAGGER_LOGO_STYLE).digest("base64")}'`;

/**
 * Swagger UI's Content-Security-Policy: scripts, styles, fetches, fonts and images from the same origin
 * only (images and fonts also as data: URLs: the logo and icons), no inline script or script attribute,
 * one inline style by its hash (SWAGGER_LOGO_STYLE), no plugins, no framing. `upgrade-insecure-requests`
 * only when the page itself came over https (TLS, or X-Forwarded-Proto from a trusted proxy): over plain
 * http it would send the browser to an https port that is not there.
 */
export function swaggerUiCsp(https: boolean): string {
  return [
    "default-src 'self'",
    "base-uri 'self'",
    "connect-src 'self'",
    "font-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "script-src-attr 'none'",
    `style-src 'self' ${SWAGGER_LOGO_STYLE_HASH}`,
    ...(https ? ["upgrade-insecure-requests"] : []),
  ].join("; ");
}
