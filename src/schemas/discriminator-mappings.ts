type JsonObject = Record<string, unknown>;

const COMPONENT_SCHEMAS = "#/components/schemas/";

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Gives every discriminator whose `oneOf` members are all $refs an explicit `mapping`: each member's
 * value of the discriminating property (its const or enum) to its $ref. Without one, OpenAPI maps a value
 * to the schema *named* like it, and the names differ (SetKey is SetKeyRequest, or SetKeyTemplateRequest
 * for templates). The schemas cannot carry the mapping themselves: Ajv validates discriminators but
 * refuses `mapping`. Used as @fastify/swagger's transformObject, on the document only.
 */
export function withDiscriminatorMappings<T>(document: T): T {
  const components = isObject(document) && isObject(document.components) ? document.components : {};
  const schemas = isObject(components.schemas) ? components.schemas : {};

  const valuesOf = (ref: string, propertyName: string): unknown[] => {
    const member = ref.startsWith(COMPONENT_SCHEMAS) ? schemas[ref.slice(COMPONENT_SCHEMAS.length)] : undefined;
    const properties = isObject(member) && isObject(member.properties) ? member.properties : {};
    const property = properties[propertyName];
    if (!isObject(property)) return [];
    if (property.const !== undefined) return [property.const];
    return Array.isArray(property.enum) ? property.enum : [];
  };

  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (!isObject(node)) return;
    const { discriminator, oneOf } = node;
    if (isObject(discriminator) && typeof discriminator.propertyName === "string" && discriminator.mapping === undefined && Array.isArray(oneOf)) {
      const refs = oneOf.map((member) => (isObject(member) && typeof member.$ref === "string" ? member.$ref : undefined));
      if (refs.every((ref) => ref !== undefined)) {
        const mapping: Record<string, string> = {};
        for (const ref of refs as string[]) for (const value of valuesOf(ref, discriminator.propertyName)) mapping[String(value)] = ref;
        node.discriminator = { ...discriminator, mapping };
      }
    }
    Object.values(node).forEach(visit);
  };

  visit(document);
  return document;
}
