import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { changeRequestSchemas } from "../../src/schemas/change-requests.js";
import { sharedSchemas } from "../../src/schemas/common.js";
import { complianceReportSchemas, complianceSchemas, RecommendedChange } from "../../src/schemas/compliance.js";

/**
 * Validates a body against the change-request schemas the way the API's validator does (Ajv with
 * discriminators and formats, the registered schemas referenced by $ref): what POST /v1/change-requests
 * would accept.
 */
const ajv = new Ajv({ allErrors: true, discriminator: true, strict: false, keywords: ["example", "x-examples"] });
addFormats.default(ajv);
for (const schema of [...sharedSchemas, ...changeRequestSchemas, ...complianceSchemas, ...complianceReportSchemas]) ajv.addSchema(schema);
const validate = ajv.compile(RecommendedChange);

/** The validator's errors for `body` as a recommended change (SetKey, RotateKey or RecoverKeyAccess); empty when valid. */
export function changeRequestErrors(body: unknown): string[] {
  return validate(body) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ""}`);
}

/** The validator's errors for `value` against a registered schema (by its $id), e.g. "ComplianceReport"; empty when valid. */
export function schemaErrors(id: string, value: unknown): string[] {
  const check = ajv.getSchema(id);
  if (!check) throw new Error(`no schema ${id}`);
  return check(value) ? [] : (check.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ""}`);
}
