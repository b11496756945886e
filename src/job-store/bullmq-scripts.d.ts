// BullMQ's compiled scripts (the text its own loader sends), one module each; BullMQ ships types for its
// ESM build only, while Node loads its CommonJS build.
declare module "bullmq/dist/cjs/scripts/addStandardJob-9.js" {
  export const addStandardJob: { name: string; content: string; keys: number };
}
