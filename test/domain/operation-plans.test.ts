import t from "tap";
import { STEP_PLANS, stepPlanOf } from "../../src/domain/operation-plans.js";
import { OPERATIONS } from "../../src/worker/operations/index.js";

t.test("every operation has its steps, worth 100 percent, and the worker runs exactly those", async (t) => {
  for (const [operation, plan] of Object.entries(STEP_PLANS)) {
    t.equal(plan.reduce((sum, step) => sum + step.weight, 0), 100, `${operation}: weights add up to 100`);
    t.equal(new Set(plan.map((step) => step.name)).size, plan.length, `${operation}: step names are unique`);
    t.equal(OPERATIONS[operation as keyof typeof OPERATIONS].steps, plan, `${operation}: the registry runs the plan the API shows`);
  }
  t.same(Object.keys(OPERATIONS).sort(), Object.keys(STEP_PLANS).sort(), "one registry entry per operation");
  t.same(stepPlanOf("NoSuchOperation"), [], "a record of an unknown operation shows no steps");
});
