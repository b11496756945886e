import t from "tap";
import { jsoncToJson } from "../../../src/sandbox/http/jsonc.js";

/** The JSON.NET leniencies the deployment service accepts, turned into JSON (src/sandbox/http/jsonc.ts). */

const parse = (text: string) => JSON.parse(jsoncToJson(text)) as unknown;

t.test("unquoted property names, comments and trailing commas become JSON; strings and literals stay as they are", async (t) => {
  t.same(parse('{"a": 1, template: {"b": [true, false, null]}}'), { a: 1, template: { b: [true, false, null] } });
  t.same(parse('{\r\n  // a comment\r\n  "a": 1, /* another, with a } */ "b": [1, 2,],\r\n}'), { a: 1, b: [1, 2] });
  t.same(parse('{"s": "// not a comment, x: {", "e": "a \\" quote, y: 1"}'), { s: "// not a comment, x: {", e: 'a " quote, y: 1' });
  t.same(parse('{"a": 1}'), { a: 1 }, "JSON is left JSON");
});

t.test("what is not JSON either way is still refused", async (t) => {
  for (const text of ["{a b: 1}", '{"a": 1,, "b": 2}', "[1,,2]", "{'a': 1}"]) t.throws(() => parse(text), SyntaxError, text);
});
