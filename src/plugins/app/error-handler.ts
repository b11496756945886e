import fp from "fastify-plugin";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { NotFoundError, problemType, type ProblemDetails } from "../../errors.js";
import { toProblem } from "../../problem-details.js";

/** The request's path without its query string: a refused request may carry a credential there (`?api-key=`). */
export function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? url : url.slice(0, query);
}

/** The problem code each refused request was answered with (metrics and the audit trail read it). */
const problemCodes = new WeakMap<FastifyRequest, string>();

export function problemCodeOf(request: FastifyRequest): string | undefined {
  return problemCodes.get(request);
}

export async function sendProblem(error: Error, request: FastifyRequest, reply: FastifyReply) {
  const { problem, headers } = toProblem(error, pathOf(request.url));
  problemCodes.set(request, problem.code);
  if (problem.status >= 500) request.log.error({ err: error }, "request failed");
  else request.log.info({ code: problem.code, status: problem.status }, "request refused");
  return reply.code(problem.status).headers(headers).type("application/problem+json; charset=utf-8").send(problem);
}

/** Node's own refusals, before there is a request: what the parser's error code means. */
const CLIENT_ERRORS: Record<string, { status: number; code: string; title: string; detail: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: "RequestHeaderFieldsTooLarge",
    title: "The request's headers are too large",
    detail: "The request's header section is larger than the server accepts (16 KiB); send fewer or shorter headers.",
  },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: "RequestTimeout", title: "The request took too long", detail: "The request was not received in time; send it again." },
};
const MALFORMED = { status: 400, code: "BadRequest", title: "The request is not valid HTTP", detail: "The request could not be parsed as HTTP/1.1 (its start line, headers or framing are malformed)." };
const REASONS: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };

/**
 * The raw HTTP answer to a request Node refused before Fastify saw it (bad framing, oversized headers):
 * problem+json like every other refusal, with the given headers (the API's security headers). Nothing of
 * the request is echoed. Undefined when the socket must only be closed (the client reset it).
 */
export function clientErrorAnswer(error: NodeJS.ErrnoException, headers: Record<string, string>): string | undefined {
  if (error.code === "ECONNRESET") return undefined;
  const { status, code, title, detail } = CLIENT_ERRORS[error.code ?? ""] ?? MALFORMED;
  const body = JSON.stringify({ type: problemType(code), title, status, detail, code } satisfies ProblemDetails);
  const lines = [`HTTP/1.1 ${status} ${REASONS[status]}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push("content-type: application/problem+json; charset=utf-8", `content-length: ${Buffer.byteLength(body)}`, "connection: close");
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

/** The one place where errors become responses: RFC 9457 problem details with a stable code. */
export default fp(
  async function errorHandler(fastify: FastifyInstance) {
    fastify.setErrorHandler((error: FastifyError, request, reply) => sendProblem(error, request, reply));
    fastify.setNotFoundHandler((request, reply) => sendProblem(new NotFoundError(`${request.method} ${pathOf(request.url)}`), request, reply));
  },
  { name: "error-handler" },
);
