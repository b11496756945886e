/**
 * What ARM's deployment service (JSON.NET) reads beyond strict JSON, as `az deployment group create` sends
 * it: the CLI splices the template file's text into the body after an unquoted `template:` key, so the
 * body may hold unquoted property names, `//` and `/* *\/` comments (JSONC templates) and trailing commas.
 * This turns such text into strict JSON; strings are copied as they are, and anything else that is not
 * JSON stays so (JSON.parse then refuses it).
 */
export function jsoncToJson(text: string): string {
  let out = "";
  let pendingComma = false;
  /** The last character written that is not whitespace. */
  let last = "";
  const write = (chunk: string) => {
    if (pendingComma) {
      out += ",";
      last = ",";
      pendingComma = false;
    }
    out += chunk;
    const trimmed = chunk.trimEnd();
    if (trimmed !== "") last = trimmed.at(-1) as string;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      write(text.slice(i, end + 1));
      i = end + 1;
    } else if (c === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
    } else if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (/\s/.test(c)) {
      out += c;
      i++;
    } else if (c === ",") {
      if (pendingComma) write("");
      pendingComma = true;
      i++;
    } else if ((c === "}" || c === "]") && pendingComma) {
      // A trailing comma: dropped.
      pendingComma = false;
      write(c);
      i++;
    } else if (/[A-Za-z_$]/.test(c) && (last === "{" || last === "," || pendingComma)) {
      const name = /^[A-Za-z_$][\w$]*/.exec(text.slice(i))?.[0] as string;
      const rest = text.slice(i + name.length);
      // A property name when a colon follows; otherwise a literal such as true, false or null.
      write(/^\s*:/.test(rest) ? JSON.stringify(name) : name);
      i += name.length;
    } else {
      write(c);
      i++;
    }
  }
  return out;
}
