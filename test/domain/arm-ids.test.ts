import t from "tap";
import { canonicalArmId, parseFhirServiceId, parseUserAssignedIdentityId, sameArmId } from "../../src/domain/arm-ids.js";

const FHIR = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys";

t.test("parses a FHIR service id into its parts", async (t) => {
  t.same(parseFhirServiceId(FHIR), {
    subscriptionId: "22222222-2222-2222-2222-222222222222",
    resourceGroup: "rg-sandbox",
    workspace: "wssandbox",
    fhirService: "fhir-sys",
    id: FHIR,
  });
  t.ok(parseFhirServiceId(FHIR.replace("resourceGroups", "resourcegroups")), "ARM ids are case-insensitive");
});

t.test("refuses ids that are not FHIR services", async (t) => {
  for (const id of [
    "",
    FHIR + "/extra",
    FHIR.replace("fhirservices", "dicomservices"),
    FHIR.replace("22222222-2222-2222-2222-222222222222", "not-a-guid"),
    FHIR.replace("fhir-sys", "x"),
    "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg/providers/Microsoft.HealthcareApis/services/fhir",
    // Segments that would rewrite the ARM path, or are not a name: dot segments, a trailing period, encodings, spaces, controls.
    ...["..", ".", "rg.", "%2e%2e", "%2E.", "rg%20x", "rg x", "rg\u0000", "rg\t", "rg\u202e", "rg/..", ""].map((group) => FHIR.replace("/rg-sandbox/", `/${group}/`)),
  ]) {
    t.equal(parseFhirServiceId(id), undefined, id);
  }
});

t.test("parses user-assigned identity ids", async (t) => {
  const id = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox";
  t.equal(parseUserAssignedIdentityId(id)?.name, "uami-sandbox");
  t.equal(parseUserAssignedIdentityId(FHIR), undefined);
  t.equal(parseUserAssignedIdentityId(id.replace("/rg-sandbox/", "/../")), undefined, "no dot segments in identity ids either");
  t.equal(parseFhirServiceId(FHIR.replace("/rg-sandbox/", "/rg.sandbox_(1)/"))?.resourceGroup, "rg.sandbox_(1)", "periods inside a name are Azure's");
});

t.test("compares ids case-insensitively", async (t) => {
  t.ok(sameArmId(FHIR, FHIR.toUpperCase()));
  t.equal(canonicalArmId(FHIR + "/"), FHIR.toLowerCase());
});
