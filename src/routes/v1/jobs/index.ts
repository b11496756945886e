import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { ANY_V1_ROUTE, RATE_LIMIT_HEADERS, WITH_BODY, jsonResponse, problemResponses, responseHeaders } from "../../../schemas/common.js";
import { PROBLEM_EXAMPLES as problems } from "../../../schemas/examples.js";
import { ApproveBody, JobIdParams, JobList, JobListQuery, JobStatusMonitor, RejectBody, RollbackBody } from "../../../schemas/jobs.js";
import { clientRequestIdOf } from "../../../security/client-request-id.js";
import { EVENT_ID_PATTERN } from "../../../job-store/job-events.js";
import type { EventSink } from "../../../services/job-event-hub.js";
import { ValidationFailedError } from "../../../errors.js";
import { isTerminal } from "../../../domain/job-record.js";
import { queryBinding } from "../../../security/page-cursor.js";

const jobRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  // approve and rollback take an optional body: none at all is `{}`.
  fastify.addHook("preValidation", async (request) => {
    if (request.method === "POST" && request.body === undefined) request.body = {};
  });
  const originOf = (request: { ip: string; headers: Record<string, string | string[] | undefined>; id: string }) => ({
    ip: request.ip,
    userAgent: typeof request.headers["user-agent"] === "string" ? request.headers["user-agent"] : undefined,
    requestId: request.id,
    clientRequestId: clientRequestIdOf(request.headers),
  });

  fastify.get(
    "/jobs/:jobId",
    {
      config: { role: "reader" },
      schema: {
        tags: ["Jobs"],
        operationId: "getJob",
        summary: "Job status monitor",
        description: "The job's status, steps, percentComplete, result or typed error. `Retry-After` (seconds) while it is not terminal.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        response: {
          200: jsonResponse(JobStatusMonitor, "The job's status monitor.", { "Retry-After": "Seconds to wait before polling again; sent while the job is not terminal." }),
          ...problemResponses(...ANY_V1_ROUTE, problems.jobIdInvalid, problems.jobNotFound, problems.queueUnavailable),
        },
      },
    },
    async (request, reply) => {
      // NotFound also for a job outside the caller's subscriptions.
      const monitor = await fastify.jobs.monitor(request.params.jobId, request.principal);
      if (!isTerminal(monitor.status)) reply.header("retry-after", String(fastify.statusRetryAfterSeconds));
      return monitor;
    },
  );

  fastify.get(
    "/jobs",
    {
      config: { role: "reader" },
      schema: {
        tags: ["Jobs"],
        operationId: "listJobs",
        summary: "List jobs",
        description:
          "Status monitors, newest first. Filters combine (all must hold). Follow `nextLink` until it is absent: each job is listed once, " +
          "in creation order, even when statuses change between pages. A page may hold fewer than `top` jobs (even none) when the filters " +
          "are selective; its `nextLink` then continues the search.",
        security: [{ apiKey: [] }, { bearer: [] }],
        querystring: JobListQuery,
        response: {
          200: jsonResponse(JobList, "A page of status monitors, newest first; follow nextLink for more."),
          ...problemResponses(...ANY_V1_ROUTE, problems.queryInvalid, problems.subscriptionNotAllowed, problems.queueUnavailable),
        },
      },
    },
    async (request) => {
      const { top, continuationToken, ...filters } = request.query;
      // Tokens are sealed positions, bound to this query and the caller's scope (page-cursor.ts).
      const cursors = fastify.jobStore.pageCursors;
      const binding = queryBinding("jobs", request.principal?.subscriptions, filters);
      const after = continuationToken === undefined ? undefined : await cursors.open(continuationToken, binding);
      const page = await fastify.jobs.list(filters, top, after, request.principal);
      if (!page.after) return { value: page.value };
      const next = new URLSearchParams();
      for (const [name, value] of Object.entries(filters)) if (typeof value === "string") next.set(name, value);
      next.set("top", String(top));
      next.set("continuationToken", await cursors.seal(page.after, binding));
      return { value: page.value, nextLink: `/v1/jobs?${next.toString()}` };
    },
  );

  fastify.post(
    "/jobs/:jobId/cancel",
    {
      config: { role: "operator" },
      schema: {
        tags: ["Jobs"],
        operationId: "cancelJob",
        summary: "Cancel a job",
        description:
          "Cancels a job that has not yet sent a write to Azure. A job no worker holds (waiting, or between retries) is Canceled at once (200). " +
          "A running job (202) ends Canceled at its next step, and at the latest right before its next Azure write: the check and the write's " +
          "claim are one atomic step, so an accepted cancel never lets a write through. Once a step (ApplyIdentity, StartArmUpdate) has begun " +
          "writing, 409 `NotCancellable` says which. A Canceled job shows `error.code` Canceled, its unfinished steps Skipped; its FHIR " +
          "service accepts new changes at once.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        response: {
          200: jsonResponse(JobStatusMonitor, "The job is Canceled."),
          202: jsonResponse(JobStatusMonitor, "Cancel requested: the running job ends Canceled before its next write; follow Operation-Location.", {
            "Operation-Location": true,
            "Retry-After": "Seconds to wait before polling the job.",
          }),
          ...problemResponses(...ANY_V1_ROUTE, ...WITH_BODY, problems.jobIdInvalid, problems.jobNotFound, problems.notCancellable, problems.queueUnavailable),
        },
      },
    },
    async (request, reply) => {
      const answer = await fastify.jobs.cancel(request.params.jobId, request.principal!);
      reply.code(answer.statusCode);
      if (answer.statusCode === 202) {
        reply.header("operation-location", `/v1/jobs/${request.params.jobId}`);
        reply.header("retry-after", String(fastify.statusRetryAfterSeconds));
      }
      return answer.monitor;
    },
  );

  fastify.post(
    "/jobs/:jobId/approve",
    {
      config: { role: "approver" },
      schema: {
        tags: ["Jobs"],
        operationId: "approveJob",
        summary: "Approve a change awaiting approval",
        description:
          "Approver (app role CMK.Approver, `approver` in an API key's roles, or admin). Approves a job that is `NotStarted` with " +
          "`currentStep` AwaitingApproval (CMK_APPROVALS=required): it starts at once, or at its window's `notBefore`. Four eyes: the job's " +
          "creator gets 403 `SelfApprovalForbidden` (principals are compared by id, not display name). A job whose approval is not Pending " +
          "(decided, expired, ended, or never needed one) gets 409 `NotAwaitingApproval`; of two approvers at once exactly one wins. The " +
          "decision, who made it and the comment are on the monitor (`approval`), in the audit trail (Approved) and in the job's webhook.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        body: ApproveBody,
        response: {
          200: jsonResponse(JobStatusMonitor, "Approved: the job's status monitor (`approval.state` Approved)."),
          ...problemResponses(
            ...ANY_V1_ROUTE,
            ...WITH_BODY,
            problems.jobIdInvalid,
            problems.selfApprovalForbidden,
            problems.jobNotFound,
            problems.notAwaitingApproval,
            problems.queueUnavailable,
          ),
        },
      },
    },
    async (request) => fastify.jobs.decide(request.params.jobId, { state: "Approved", comment: request.body.comment }, request.principal!, originOf(request)),
  );

  fastify.post(
    "/jobs/:jobId/reject",
    {
      config: { role: "approver" },
      schema: {
        tags: ["Jobs"],
        operationId: "rejectJob",
        summary: "Reject a change awaiting approval",
        description:
          "Approver. Rejects a job awaiting approval: it ends `Canceled` with `error.code` Rejected, nothing written, and its FHIR service " +
          "accepts new changes at once. `comment` (required) says why; it is on the monitor, in the audit trail (Rejected) and the webhook. " +
          "409 `NotAwaitingApproval` when the approval is not Pending.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        body: RejectBody,
        response: {
          200: jsonResponse(JobStatusMonitor, "Rejected: the job's status monitor (Canceled, `error.code` Rejected)."),
          ...problemResponses(...ANY_V1_ROUTE, ...WITH_BODY, problems.bodyInvalid, problems.jobNotFound, problems.notAwaitingApproval, problems.queueUnavailable),
        },
      },
    },
    async (request) => fastify.jobs.decide(request.params.jobId, { state: "Rejected", comment: request.body.comment }, request.principal!, originOf(request)),
  );

  fastify.post(
    "/jobs/:jobId/rollback",
    {
      config: { role: "operator", auditChanges: true },
      schema: {
        tags: ["Jobs"],
        operationId: "rollbackJob",
        summary: "Roll back a Succeeded change",
        description:
          "Starts a new job (`rollbackOf`: this job) that restores the key URL and identity a Succeeded SetKey or RotateKey replaced, as its " +
          "worker recorded them before its first write: a SetKey with its own pre-flight (the old key version must still be enabled and " +
          "reachable by the identity), approval (CMK_APPROVALS) and window (`schedule`). 202 with the new job's monitor and " +
          "`Operation-Location`. 409 `NotRollbackable` with the `reason` when there is nothing to restore: the job did not succeed, made no " +
          "write, is another operation, or replaced a Microsoft-managed key (ARM defines no way back to one). 409 `ChangeInProgress` while " +
          "the FHIR service has an unfinished job. On a fleet rotation's parent (RotateFleet) that has ended with at least one child " +
          "that moved a service: a new RotateFleet parent (`rollbackOf`) approved once and windowed as a whole, which adds one SetKey " +
          "child (`rollbackOf`: the original child) per child that moved a service; the others count as `skipped`.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        body: RollbackBody,
        response: {
          202: jsonResponse(JobStatusMonitor, "Accepted: the rollback job's status monitor; follow Operation-Location.", { "Operation-Location": true }),
          ...problemResponses(
            ...ANY_V1_ROUTE,
            ...WITH_BODY,
            problems.bodyInvalid,
            problems.jobNotFound,
            problems.notRollbackable,
            problems.changeInProgress,
            problems.queueUnavailable,
          ),
        },
      },
    },
    async (request, reply) => {
      const answer = await fastify.changes.rollback(request.params.jobId, request.body, request.principal!, originOf(request));
      request.auditRecorded = answer.audited;
      return reply.code(202).headers(answer.headers).send(answer.body);
    },
  );

  fastify.get(
    "/jobs/:jobId/events",
    {
      config: { role: "reader" },
      schema: {
        tags: ["Jobs"],
        operationId: "followJobEvents",
        summary: "Follow a job (Server-Sent Events)",
        description:
          "`text/event-stream`: one event per change of the status monitor (`data:` the monitor JSON, `id:` increasing), comment " +
          "heartbeats, closed after the terminal monitor. Without `Last-Event-ID` the stream starts with the current monitor; with it, " +
          "every change after that id is sent first, so a reconnecting client misses nothing. 204 when the client has seen the end " +
          "already. Authentication is the same as for every /v1 route (x-api-key or bearer header; no key in the query string): browser " +
          "clients need an EventSource that can send headers (e.g. a fetch-based one). One credential may hold " +
          "CMK_SSE_MAX_STREAMS_PER_CREDENTIAL streams open (default 20) and one API process CMK_SSE_MAX_STREAMS (default 1000): " +
          "beyond that 429 `TooManyEventStreams` with Retry-After; a stream's place is freed when it closes.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        headers: Type.Object({
          "last-event-id": Type.Optional(Type.String({ maxLength: 41, description: "The id of the last event received, on reconnect." })),
        }),
        response: {
          200: {
            description: "The event stream.",
            headers: responseHeaders(RATE_LIMIT_HEADERS),
            content: { "text/event-stream": { schema: { type: "string", description: "id: <event id>\\ndata: <status monitor JSON>\\n\\n, and `: heartbeat` comments." } } },
          },
          204: { description: "The job has ended and the client saw its last event already.", type: "null", headers: responseHeaders(RATE_LIMIT_HEADERS) },
          ...problemResponses(...ANY_V1_ROUTE, problems.tooManyEventStreams, problems.jobIdInvalid, problems.jobNotFound, problems.queueUnavailable),
        },
      },
    },
    async (request, reply) => {
      const { jobId } = request.params;
      const lastEventId = request.headers["last-event-id"];
      if (lastEventId !== undefined && !EVENT_ID_PATTERN.test(lastEventId)) {
        throw new ValidationFailedError([{ path: "/headers/last-event-id", message: "must be an event id this stream sent (<number>-<number>)" }]);
      }
      await fastify.jobs.monitor(jobId, request.principal);
      // Held until the stream closes, however it closes (job end, client gone, server closing).
      const release = fastify.jobs.reserveStream(request.principal!);

      let opened = false;
      let ended = false;
      const open = () => {
        if (opened) return;
        opened = true;
        reply.hijack();
        const headers: Record<string, string | number | string[]> = {};
        for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value;
        reply.raw.writeHead(200, {
          ...headers,
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-store",
          "x-accel-buffering": "no",
          connection: "keep-alive",
        });
        // How long EventSource waits before reconnecting.
        reply.raw.write("retry: 2000\n\n");
      };
      const sink: EventSink = {
        event: ({ id, monitor }) => {
          if (ended) return;
          open();
          reply.raw.write(`id: ${id}\ndata: ${JSON.stringify(monitor)}\n\n`);
        },
        heartbeat: () => {
          if (opened && !ended) reply.raw.write(": heartbeat\n\n");
        },
        end: () => {
          if (ended) return;
          ended = true;
          if (opened) reply.raw.end();
        },
      };
      let unfollow: () => void;
      try {
        unfollow = await fastify.jobs.follow(jobId, lastEventId, sink);
      } catch (error) {
        release();
        throw error;
      }
      if (ended && !opened) {
        unfollow();
        release();
        return reply.code(204).send();
      }
      open();
      const stop = () => {
        ended = true;
        unfollow();
        release();
      };
      // The stream may have ended (terminal job) or lost its client while `follow` ran: 'close' may be past.
      reply.raw.on("close", stop);
      if (ended || request.raw.destroyed || reply.raw.destroyed) stop();
      return reply;
    },
  );
};

export default jobRoutes;
