import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import type { Test } from "tap";
import type { RenderedTemplate } from "../../src/domain/arm-template.js";

/** Our own JSON schema of the deployment template and parameters file formats (test/fixtures). */
const formatSchema = JSON.parse(readFileSync(new URL("../fixtures/arm-deployment-template.schema.json", import.meta.url), "utf8")) as { $id: string };
export const formatAjv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
formatAjv.addSchema(formatSchema);
export const validateTemplate = formatAjv.getSchema(`${formatSchema.$id}#/definitions/template`)!;
export const validateParameters = formatAjv.getSchema(`${formatSchema.$id}#/definitions/parametersFile`)!;

/** The template and parameters file are well-formed, and no role but the one we chose is granted. */
export function checkTemplateFormat(t: Test, rendered: Pick<RenderedTemplate, "template" | "parameters">): void {
  t.ok(validateTemplate(rendered.template), `template matches the deployment template format ${formatAjv.errorsText(validateTemplate.errors)}`);
  t.ok(validateParameters(rendered.parameters), `parameters file matches the format ${formatAjv.errorsText(validateParameters.errors)}`);
  t.notMatch(JSON.stringify(rendered.template), /14b46e9e/i, "never the Crypto Officer role of the documentation's sample");
}
