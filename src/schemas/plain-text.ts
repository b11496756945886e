/**
 * Characters no free text may carry: C0 and C1 controls, DEL, and the bidirectional formatting
 * characters (embeddings, overrides, isolates, marks) that make text read differently from what it is,
 * in logs, tickets and the audit trail. One class for every free-text field (schemas/common.ts PlainText).
 */
export const NOT_PLAIN = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069";

/** Whether a schema `pattern` is a PlainText one (problem details name the rule it broke). */
export const isPlainTextPattern = (pattern: string): boolean => pattern.endsWith(`[^${NOT_PLAIN}]*$`);
