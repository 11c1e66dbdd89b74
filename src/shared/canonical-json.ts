/**
 * JSON with object keys sorted (by UTF-16 code units), so equal values give
 * equal text whatever order a client sent the keys in. Iterative, because
 * arguments come from clients and JSON.parse accepts nesting far deeper than
 * a recursive walk survives. Values outside JSON (undefined, functions)
 * serialize as JSON.stringify would inside an array: null.
 */
export function canonicalJson(root: unknown): string {
  const out: string[] = [];
  // Work items: a value to serialize, or literal text already decided.
  const stack: Array<{ text: string } | { value: unknown }> = [{ value: root }];
  while (stack.length) {
    const item = stack.pop()!;
    if ('text' in item) {
      out.push(item.text);
      continue;
    }
    const v = item.value;
    if (Array.isArray(v)) {
      stack.push({ text: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i] });
        if (i > 0) stack.push({ text: ',' });
      }
      out.push('[');
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v)
        .filter((k) => isJsonValue((v as Record<string, unknown>)[k]))
        .sort();
      stack.push({ text: '}' });
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (v as Record<string, unknown>)[keys[i]!] });
        stack.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:` });
      }
      out.push('{');
    } else {
      out.push(typeof v === 'bigint' ? v.toString() : isJsonValue(v) ? JSON.stringify(v) : 'null');
    }
  }
  return out.join('');
}

/** Members JSON.stringify would drop from an object. */
function isJsonValue(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}
