import { createHash } from "node:crypto";
import type { Caller } from "../caller.js";
import { isRecord, json } from "../http/responses.js";
import type { Router } from "../http/router.js";
import type { RouteParams, SandboxResponse } from "../http/types.js";
import { armTime, newGuid } from "../ids.js";
import { findGrant } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { idKey, lower, resourceGroupKey, type World } from "../world.js";
import { requiredAction } from "./actions.js";
import { parseArmBody } from "./body.js";
import { armError, invalidRequestContent } from "./errors.js";
import { pagedList } from "./paging.js";
import { servedApiVersions } from "./providers.js";
import { ARM_HOST, type ArmRequest } from "./request.js";
import { checkResourceGroup } from "./scope.js";
import {
  armTypeName,
  DeploymentPlan,
  ReferenceNeeded,
  TemplateError,
  type DeployedResource,
  type DeploymentTemplate,
  type ParameterValues,
  type PlannedResource,
  type ReferenceResolver,
} from "./template-evaluator.js";

/**
 * ARM template deployments to a resource group (`Microsoft.Resources/deployments`): PUT, GET, list,
 * `validate` and the deployment's async operation (`operationStatuses`). A deployment's resources
 * are written one at a time in dependsOn order through the same emulated resource providers, as the
 * deploying principal, so every check a direct request meets (RBAC, the RP's validation, a FHIR
 * service's key check, fault rules) meets the deployment too. A resource whose write is an async
 * operation (a FHIR service) is waited for before the next one starts. Like the RPs' own operations,
 * deployments advance lazily, on the emulator's clock: `DeploymentEngine.advance` runs before every
 * request the emulator serves, right after the operations whose time is up have ended.
 *
 * Real traffic (SUMMARY.md 3): PUT answers 201 with `provisioningState: "Accepted"` and an
 * `Azure-AsyncOperation` of the form `…/deployments/{name}/operationStatuses/{20 digits}`, which
 * answers only `{"status": "Running"}` and then `{"status": "Succeeded"}`.
 */

export type DeploymentState = "Accepted" | "Running" | "Succeeded" | "Failed";

interface DeploymentStep {
  resource: PlannedResource;
  status: "Pending" | "Running" | "Succeeded";
  /** The provider's async operation, for a write that answered with `Azure-AsyncOperation`. */
  operationId?: string;
}

export interface DeploymentErrorDetail {
  code: string;
  message: string;
  target?: string;
}

export interface DeploymentRecord {
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  /** The deploying principal: every resource is written as it. */
  caller: Caller;
  plan: DeploymentPlan;
  steps: DeploymentStep[];
  templateHash: string;
  tags?: Record<string, string>;
  correlationId: string;
  operationId: string;
  provisioningState: DeploymentState;
  startedAt: number;
  endedAt?: number;
  outputs?: Record<string, { type: string; value: unknown }>;
  error?: { code: string; message: string; details: DeploymentErrorDetail[] };
}

const DEPLOYMENT_TYPE = "Microsoft.Resources/deployments";
const DEPLOYMENT_NAME = /^[-\w._()]{1,64}$/;
const DEPLOYMENTS = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroup}/providers/Microsoft.Resources/deployments";
const FAILED_MESSAGE =
  "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.";

function deploymentId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${DEPLOYMENT_TYPE}/${name}`;
}

/** ISO 8601 duration as ARM writes it, e.g. `PT27.158846S`. */
function duration(ms: number): string {
  return `PT${(ms / 1000).toFixed(6).replace(/\.?0+$/, "")}S`;
}

/** ARM's templateHash is a decimal number derived from the template. */
function templateHash(template: unknown): string {
  return (BigInt(`0x${createHash("sha256").update(JSON.stringify(template)).digest("hex").slice(0, 15)}`) % 10n ** 19n).toString();
}

/** Deployment operation ids are 20 digits in real traffic, e.g. `08585131455018747294`. */
function newDeploymentOperationId(): string {
  return `0858${BigInt(`0x${createHash("sha256").update(newGuid()).digest("hex").slice(0, 14)}`).toString().padStart(16, "0").slice(-16)}`;
}

/** `{ name: { type, value } }` with ARM's type names; secure values are not echoed. */
function typedParameters(plan: DeploymentPlan): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(plan.parameters).map(([name, value]) => {
      const type = armTypeName(plan.parameterTypes[name] ?? "string");
      return [name, type.startsWith("Secure") ? { type } : { type, value }];
    }),
  );
}

function resourceName(resource: PlannedResource): string {
  const [, path = ""] = /\/providers\/[^/]+\/(.*)$/.exec(resource.id) ?? [];
  return path.split("/").filter((_, index) => index % 2 === 1).join("/");
}

function describe(plan: DeploymentPlan): { providers: unknown[]; dependencies: unknown[] } {
  const namespaces = new Map<string, Set<string>>();
  for (const resource of plan.resources) {
    const [namespace = "", ...types] = resource.type.split("/");
    const served = namespaces.get(namespace) ?? new Set<string>();
    served.add(types.join("/"));
    namespaces.set(namespace, served);
  }
  const byKey = new Map(plan.resources.map((resource) => [resource.key, resource]));
  return {
    providers: [...namespaces].map(([namespace, types]) => ({ namespace, resourceTypes: [...types].map((resourceType) => ({ resourceType })) })),
    dependencies: plan.resources
      .filter((resource) => resource.dependsOn.length > 0)
      .map((resource) => ({
        dependsOn: resource.dependsOn.map((key) => {
          const dependency = byKey.get(key) as PlannedResource;
          return { id: dependency.id, resourceType: dependency.type, resourceName: resourceName(dependency) };
        }),
        id: resource.id,
        resourceType: resource.type,
        resourceName: resourceName(resource),
      })),
  };
}

function deploymentResource(deployment: DeploymentRecord, now: number): Record<string, unknown> {
  const properties: Record<string, unknown> = {
    templateHash: deployment.templateHash,
    parameters: typedParameters(deployment.plan),
    mode: "Incremental",
    provisioningState: deployment.provisioningState,
    timestamp: armTime(deployment.endedAt ?? now),
    duration: duration((deployment.endedAt ?? now) - deployment.startedAt),
    correlationId: deployment.correlationId,
    ...describe(deployment.plan),
  };
  if (deployment.outputs) properties.outputs = deployment.outputs;
  if (deployment.provisioningState === "Succeeded") properties.outputResources = deployment.steps.map((step) => ({ id: step.resource.id }));
  if (deployment.error) properties.error = deployment.error;
  return { id: deployment.id, name: deployment.name, type: DEPLOYMENT_TYPE, ...(deployment.tags ? { tags: deployment.tags } : {}), properties };
}

/** A request ARM itself sends for a deployment: to a provider, as the deploying principal. */
function internalRequest(caller: Caller, method: string, path: string, apiVersion: string, body?: unknown): ArmRequest {
  return {
    method,
    host: ARM_HOST,
    hostHeader: ARM_HOST,
    origin: `https://${ARM_HOST}`,
    path,
    query: new URLSearchParams({ "api-version": apiVersion }),
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: Buffer.from(body === undefined ? "" : JSON.stringify(body)),
    remoteAddress: "127.0.0.1",
    caller,
    apiVersion,
    armOrigin: `https://${ARM_HOST}`,
  };
}

/** The `{ error: { code, message } }` of a provider's answer, as a deployment error detail. */
function detailOf(response: SandboxResponse, target: string): DeploymentErrorDetail {
  const error = isRecord(response.body) && isRecord(response.body.error) ? response.body.error : {};
  return { code: typeof error.code === "string" ? error.code : `Http${response.status}`, message: typeof error.message === "string" ? error.message : `The request failed with status ${response.status}.`, target };
}

class StepFailed extends Error {
  constructor(readonly detail: DeploymentErrorDetail) {
    super(detail.message);
  }
}

export type Serve = (request: ArmRequest) => Promise<SandboxResponse>;

export class DeploymentEngine {
  private advancing: Promise<void> | undefined;

  constructor(
    private readonly runtime: SandboxRuntime,
    private readonly serve: Serve,
  ) {}

  /** Moves every unfinished deployment as far as it can go now. Concurrent callers share one pass. */
  advance(): Promise<void> {
    if (!this.advancing) {
      const pass = this.advanceAll();
      this.advancing = pass;
      // Cleared after the assignment above, also when the pass finished at once.
      void pass.finally(() => {
        if (this.advancing === pass) this.advancing = undefined;
      }).catch(() => undefined);
    }
    return this.advancing;
  }

  private async advanceAll(): Promise<void> {
    for (const deployment of this.runtime.world.deployments.values()) {
      if (deployment.provisioningState === "Accepted" || deployment.provisioningState === "Running") await this.advanceOne(deployment);
    }
  }

  private async advanceOne(deployment: DeploymentRecord): Promise<void> {
    deployment.provisioningState = "Running";
    try {
      for (;;) {
        const running = deployment.steps.find((step) => step.status === "Running");
        if (running) {
          const operation = this.runtime.world.operations.get(running.operationId ?? "");
          if (operation?.status === "Running") return;
          if (operation?.status === "Failed" || operation?.status === "Canceled") {
            throw new StepFailed({ code: operation.error?.code ?? "Failed", message: operation.error?.message ?? "The operation failed.", target: running.resource.id });
          }
          running.status = "Succeeded";
          continue;
        }
        const next = deployment.steps.find((step) => step.status === "Pending");
        if (!next) {
          deployment.outputs = await this.withReferences(deployment, (resolve) => deployment.plan.outputs(resolve));
          this.finish(deployment, "Succeeded");
          return;
        }
        const evaluated = await this.withReferences(deployment, (resolve) => deployment.plan.evaluate(next.resource, resolve));
        await this.write(deployment, next, evaluated);
      }
    } catch (error) {
      if (error instanceof StepFailed) this.finish(deployment, "Failed", error.detail);
      else if (error instanceof TemplateError) this.finish(deployment, "Failed", { code: "InvalidTemplate", message: error.message });
      else throw error;
    }
  }

  /** The resource's PUT through its provider; an answer with `Azure-AsyncOperation` is waited for. */
  private async write(deployment: DeploymentRecord, step: DeploymentStep, resource: DeployedResource): Promise<void> {
    const response = await this.serve(internalRequest(deployment.caller, "PUT", resource.id, resource.apiVersion, resource.body));
    if (response.status >= 400) throw new StepFailed(detailOf(response, resource.id));
    const asyncOperation = response.headers?.["Azure-AsyncOperation"];
    if (asyncOperation) {
      step.operationId = new URL(asyncOperation).pathname.split("/").pop() ?? "";
      step.status = "Running";
    } else {
      step.status = "Succeeded";
    }
  }

  /**
   * Evaluates with reference() answered from the resources' current state: each `ReferenceNeeded`
   * reads the resource through its provider (as the deploying principal) and evaluates again.
   */
  private async withReferences<T>(deployment: DeploymentRecord, evaluate: (resolve: ReferenceResolver) => T): Promise<T> {
    const states = new Map<string, Record<string, unknown>>();
    const resolve: ReferenceResolver = (id, apiVersion) => {
      const state = states.get(lower(id));
      if (!state) throw new ReferenceNeeded(id, apiVersion);
      return state;
    };
    for (;;) {
      try {
        return evaluate(resolve);
      } catch (error) {
        if (!(error instanceof ReferenceNeeded)) throw error;
        const response = await this.serve(internalRequest(deployment.caller, "GET", error.id, error.apiVersion));
        if (response.status !== 200) throw new StepFailed(detailOf(response, error.id));
        const properties = isRecord(response.body) && isRecord(response.body.properties) ? response.body.properties : {};
        states.set(lower(error.id), properties);
      }
    }
  }

  private finish(deployment: DeploymentRecord, state: "Succeeded" | "Failed", detail?: DeploymentErrorDetail): void {
    deployment.provisioningState = state;
    deployment.endedAt = this.runtime.clock.now();
    if (detail) deployment.error = { code: "DeploymentFailed", message: FAILED_MESSAGE, details: [detail] };
  }
}

interface ParsedDeployment {
  plan: DeploymentPlan;
  template: DeploymentTemplate;
  tags?: Record<string, string>;
}

/**
 * What ARM checks before it accepts a deployment (PUT and validate): the request's shape, the template
 * (400 `InvalidTemplate`), then each resource: a type the emulator serves, and the caller's right to
 * write it (400 `InvalidTemplateDeployment` with one detail per resource).
 */
function preflight(world: World, request: ArmRequest, params: RouteParams): ParsedDeployment | { error: SandboxResponse } {
  const name = params.name ?? "";
  if (!DEPLOYMENT_NAME.test(name)) return { error: armError(400, "InvalidDeploymentName", `The deployment name '${name}' is invalid: 1-64 letters, digits, '-', '_', '.', '(' or ')'.`) };
  // `az deployment group create` splices the template file's text in after an unquoted `template:` key.
  const parsed = parseArmBody(request, { jsonc: true });
  if ("error" in parsed) return parsed;
  const properties = isRecord(parsed.body.properties) ? parsed.body.properties : undefined;
  if (!properties) return { error: invalidRequestContent("The request content was invalid: 'properties' is required.") };
  if (properties.templateLink !== undefined || properties.parametersLink !== undefined) {
    return { error: invalidRequestContent("The sandbox deploys inline templates only: send 'template' and 'parameters' instead of 'templateLink' or 'parametersLink'.") };
  }
  if (typeof properties.mode === "string" && properties.mode.toLowerCase() !== "incremental") {
    return { error: invalidRequestContent(`The sandbox deploys in Incremental mode only, not '${properties.mode}'.`) };
  }
  if (!isRecord(properties.template)) return { error: invalidRequestContent("The request content was invalid: 'properties.template' must be the template object.") };
  if (properties.parameters !== undefined && !isRecord(properties.parameters)) return { error: invalidRequestContent("The request content was invalid: 'properties.parameters' must be an object.") };
  const template = properties.template as unknown as DeploymentTemplate;
  let plan: DeploymentPlan;
  try {
    const group = world.resourceGroups.get(resourceGroupKey(params.subscriptionId ?? "", params.resourceGroup ?? ""));
    plan = new DeploymentPlan(template, properties.parameters as ParameterValues | undefined, {
      subscriptionId: params.subscriptionId ?? "",
      resourceGroup: group?.name ?? params.resourceGroup ?? "",
      tenantId: world.tenantId,
      ...(group ? { resourceGroupLocation: group.location } : {}),
    });
    plan.validate();
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    return { error: armError(400, "InvalidTemplate", `Deployment template validation failed: '${error.message}'.`) };
  }
  const details: DeploymentErrorDetail[] = [];
  for (const resource of plan.resources) {
    if (!servedApiVersions(resource.type)) {
      details.push({ code: "NoRegisteredProviderFound", message: `The sandbox does not emulate resource type '${resource.type}'.`, target: resource.id });
      continue;
    }
    const action = requiredAction("PUT", resource.id);
    if (action && !findGrant(world, request.caller.objectId, resource.id, { action })) {
      details.push({
        code: "AuthorizationFailed",
        message: `Authorization failed for template resource '${resourceName(resource)}' of type '${resource.type}'. The client '${request.caller.appId}' with object id '${request.caller.objectId}' does not have permission to perform action '${action}' at scope '${resource.id}'.`,
        target: resource.id,
      });
    }
  }
  if (details.length > 0) {
    return {
      error: json(400, {
        error: {
          code: "InvalidTemplateDeployment",
          message: `The template deployment '${name}' is not valid according to the validation procedure. The tracking id is '${newGuid()}'. See inner errors for details.`,
          details,
        },
      }),
    };
  }
  const tags = isRecord(parsed.body.tags) ? (parsed.body.tags as Record<string, string>) : undefined;
  return { plan, template, ...(tags ? { tags } : {}) };
}

export function registerDeployments(router: Router<ArmRequest>, runtime: SandboxRuntime): void {
  const world = () => runtime.world;
  const find = (params: RouteParams) => world().deployments.get(idKey(deploymentId(params.subscriptionId ?? "", params.resourceGroup ?? "", params.name ?? "")));
  const notFound = (params: RouteParams) => armError(404, "DeploymentNotFound", `Deployment '${params.name}' could not be found.`);

  router.on("GET", DEPLOYMENTS, (request, params) => {
    const error = checkResourceGroup(world(), params);
    if (error) return error;
    const prefix = idKey(deploymentId(params.subscriptionId ?? "", params.resourceGroup ?? "", ""));
    const now = runtime.clock.now();
    return pagedList(request, [...world().deployments.values()].filter((deployment) => idKey(deployment.id).startsWith(prefix)), { pageSize: 100, top: true }, (deployment) =>
      deploymentResource(deployment, now),
    );
  });

  router.on("GET", `${DEPLOYMENTS}/{name}`, (_request, params) => {
    const error = checkResourceGroup(world(), params);
    if (error) return error;
    const deployment = find(params);
    return deployment ? json(200, deploymentResource(deployment, runtime.clock.now())) : notFound(params);
  });

  router.on("PUT", `${DEPLOYMENTS}/{name}`, (request, params) => {
    const error = checkResourceGroup(world(), params);
    if (error) return error;
    const existing = find(params);
    if (existing && (existing.provisioningState === "Accepted" || existing.provisioningState === "Running")) {
      return armError(409, "DeploymentActive", `The deployment '${params.name}' cannot be saved, because this would overwrite an existing deployment which is still active.`);
    }
    const checked = preflight(world(), request, params);
    if ("error" in checked) return checked.error;
    const now = runtime.clock.now();
    const deployment: DeploymentRecord = {
      id: deploymentId(params.subscriptionId ?? "", params.resourceGroup ?? "", params.name ?? ""),
      name: params.name ?? "",
      subscriptionId: params.subscriptionId ?? "",
      resourceGroup: params.resourceGroup ?? "",
      caller: request.caller,
      plan: checked.plan,
      steps: checked.plan.resources.map((resource) => ({ resource, status: "Pending" })),
      templateHash: templateHash(checked.template),
      ...(checked.tags ? { tags: checked.tags } : {}),
      correlationId: newGuid(),
      operationId: newDeploymentOperationId(),
      provisioningState: "Accepted",
      startedAt: now,
    };
    world().deployments.set(idKey(deployment.id), deployment);
    const statusUrl = `${request.armOrigin}/subscriptions/${params.subscriptionId}/resourcegroups/${params.resourceGroup}/providers/${DEPLOYMENT_TYPE}/${deployment.name}/operationStatuses/${deployment.operationId}?api-version=${encodeURIComponent(request.apiVersion)}`;
    return json(existing ? 200 : 201, deploymentResource(deployment, now), { "Azure-AsyncOperation": statusUrl });
  });

  router.on("POST", `${DEPLOYMENTS}/{name}/validate`, (request, params) => {
    const error = checkResourceGroup(world(), params);
    if (error) return error;
    const checked = preflight(world(), request, params);
    if ("error" in checked) return checked.error;
    return json(200, {
      id: deploymentId(params.subscriptionId ?? "", params.resourceGroup ?? "", params.name ?? ""),
      name: params.name,
      type: DEPLOYMENT_TYPE,
      properties: {
        templateHash: templateHash(checked.template),
        parameters: typedParameters(checked.plan),
        mode: "Incremental",
        provisioningState: "Succeeded",
        timestamp: armTime(runtime.clock.now()),
        duration: "PT0S",
        correlationId: newGuid(),
        ...describe(checked.plan),
        validatedResources: checked.plan.resources.map((resource) => ({ id: resource.id })),
      },
    });
  });

  // The deployment's async operation: only `status` (and `error` once Failed), as real traffic shows.
  router.on("GET", `${DEPLOYMENTS}/{name}/operationStatuses/{operationId}`, (_request, params) => {
    const error = checkResourceGroup(world(), params);
    if (error) return error;
    const deployment = find(params);
    if (!deployment || deployment.operationId !== params.operationId) return armError(404, "OperationNotFound", `The operation '${params.operationId}' was not found.`);
    const status = deployment.provisioningState === "Accepted" ? "Running" : deployment.provisioningState;
    return json(200, deployment.error ? { status, error: deployment.error } : { status });
  });
}
