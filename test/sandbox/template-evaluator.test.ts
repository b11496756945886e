import t from "tap";
import { deploy, DeploymentPlan, TemplateError, type DeploymentTemplate } from "../../src/sandbox/arm/template-evaluator.js";

/** The template functions and checks deploy/cmk-service.json needs of the evaluator (arm/template-evaluator.ts). */

const SCOPE = { subscriptionId: "sub", resourceGroup: "rg", tenantId: "tenant", resourceGroupLocation: "westus3" };
const IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities";

function template(resources: DeploymentTemplate["resources"], extra: Partial<DeploymentTemplate> = {}): DeploymentTemplate {
  return { parameters: { vault: { type: "string", defaultValue: "" } }, resources, ...extra };
}

const identity = (name: string, more: Record<string, unknown> = {}) => ({ type: IDENTITY, apiVersion: "2023-01-31", name, location: "westus3", ...more });

t.test("condition: a false one is not deployed and dependsOn naming it is dropped; it must be a boolean of parameters and variables", async (t) => {
  const conditional = template([identity("first", { condition: "[not(empty(parameters('vault')))]" }), identity("second", { dependsOn: [`[resourceId('${IDENTITY}', 'first')]`] })]);
  const without = deploy(conditional, undefined, SCOPE);
  t.same(without.resources.map((resource) => resource.name), ["second"]);
  t.same(without.resources[0]?.dependsOn, [], "the dependency on the skipped resource is dropped");
  const withVault = deploy(conditional, { parameters: { vault: { value: "/x" } } }, SCOPE);
  t.same(withVault.resources.map((resource) => resource.name), ["first", "second"]);
  t.same(withVault.resources[1]?.dependsOn, [`/subscriptions/sub/resourcegroups/rg/providers/${IDENTITY}/first`.toLowerCase()]);

  t.throws(() => deploy(template([identity("a", { condition: "[parameters('vault')]" })]), undefined, SCOPE), new TemplateError(`the condition of /subscriptions/sub/resourceGroups/rg/providers/${IDENTITY}/a is "", not a boolean`));
  t.throws(() => deploy(template([identity("a", { condition: "[equals(reference('/x', '1').y, 1)]" })]), undefined, SCOPE), /reference\(\) is only allowed in resources and outputs/);
  t.throws(() => deploy(template([identity("a"), identity("b", { dependsOn: ["/nothing"] })]), undefined, SCOPE), /depends on \/nothing, which the template does not declare/);
});

t.test("empty, not, equals and if", async (t) => {
  const value = (expression: string) => deploy(template([], { outputs: { out: { type: "string", value: expression } } }), undefined, SCOPE).outputs.out;
  t.equal(value("[empty('')]"), true);
  t.equal(value("[empty('a')]"), false);
  t.equal(value("[empty(parameters('vault'))]"), true);
  t.equal(value("[not(equals('a', 'b'))]"), true);
  t.equal(value("[equals(resourceGroup().location, 'westus3')]"), true);
  t.equal(value("[if(empty(parameters('vault')), 'none', 'some')]"), "none");
  t.throws(() => value("[not('a')]"), /not\(\) takes one boolean/);
  t.throws(() => value("[if('a', 1, 2)]"), /if\(\) takes a boolean/);
});

t.test("parameter constraints: allowedValues, minLength, maxLength", async (t) => {
  const constrained: DeploymentTemplate = { parameters: { prefix: { type: "string", minLength: 2, maxLength: 4, allowedValues: ["ab", "abc", "abcdef"] } }, resources: [] };
  t.doesNotThrow(() => new DeploymentPlan(constrained, { prefix: { value: "abc" } }, SCOPE));
  t.throws(() => new DeploymentPlan(constrained, { prefix: { value: "xyz" } }, SCOPE), /parameter prefix: "xyz" is not one of the allowed values/);
  t.throws(() => new DeploymentPlan(constrained, { prefix: { value: "abcdef" } }, SCOPE), /parameter prefix: length 6 is above the maximum length 4/);
  t.throws(() => new DeploymentPlan({ parameters: { n: { type: "int", minValue: 1 } }, resources: [] }, { n: { value: 0 } }, SCOPE), /0 is below the minimum value 1/);
});

t.test("validate checks every expression, also after a reference(), and outputs", async (t) => {
  const reading = (value: string) =>
    template(
      [
        identity("a"),
        {
          type: IDENTITY,
          apiVersion: "2023-01-31",
          name: "b",
          location: "westus3",
          dependsOn: [`[resourceId('${IDENTITY}', 'a')]`],
          tags: { first: `[reference(resourceId('${IDENTITY}', 'a'), '2023-01-31').clientId]`, second: value },
        },
      ],
      { outputs: { out: { type: "string", value: `[format('{0}', reference(resourceId('${IDENTITY}', 'a'), '2023-01-31').principalId)]` } } },
    );
  t.doesNotThrow(() => new DeploymentPlan(reading("[format('x-{0}', reference(resourceId('" + IDENTITY + "', 'a'), '2023-01-31').principalId)]"), undefined, SCOPE).validate(), "values made of reference() wait for deployment");
  t.throws(() => new DeploymentPlan(reading("[variables('missing')]"), undefined, SCOPE).validate(), /variables\('missing'\) is not declared/, "after a reference()");
  t.throws(() => new DeploymentPlan(reading("[uniqueString('x')]"), undefined, SCOPE).validate(), /uniqueString\(\) is not supported/);
  const badOutput = reading("b");
  badOutput.outputs = { out: { type: "string", value: "[variables('missing')]" } };
  t.throws(() => new DeploymentPlan(badOutput, undefined, SCOPE).validate(), /variables\('missing'\) is not declared/, "outputs too");
});
