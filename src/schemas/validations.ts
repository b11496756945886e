import { Type, type Static } from "@sinclair/typebox";
import { CHECK_IDS } from "../domain/checks/check-result.js";

export const CheckResult = Type.Object(
  {
    id: Type.String({ description: `Stable check id: ${CHECK_IDS.join(", ")} (more may be added).` }),
    status: Type.Union([Type.Literal("Passed"), Type.Literal("Failed"), Type.Literal("Warning"), Type.Literal("Skipped")]),
    message: Type.String({ description: "What was found." }),
    remediation: Type.Optional(Type.String({ description: "How to fix it, with the az CLI command or portal step where there is one." })),
  },
  { $id: "CheckResult" },
);

export const ValidationReport = Type.Object(
  {
    valid: Type.Boolean({ description: "True when no check failed (warnings do not block)." }),
    checks: Type.Array(Type.Ref(CheckResult)),
  },
  { $id: "ValidationReport", description: "Every pre-flight check for a would-be change." },
);
export type ValidationReport = Static<typeof ValidationReport>;

export const validationSchemas = [CheckResult, ValidationReport];
