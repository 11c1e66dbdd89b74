/**
 * The value encoding of the headers 2026-07-28 mirrors from the body
 * (`Mcp-Name`, `Mcp-Param-*`): plain visible ASCII as is, anything else as
 * `=?base64?…?=` of its UTF-8 (SEP-2243 "Value Encoding").
 */
const SENTINEL = /^=\?base64\?(.*)\?=$/s;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Visible ASCII and inner spaces, without leading or trailing whitespace. */
const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** The value a header stands for; undefined when it is a sentinel whose Base64 is malformed. */
export function decodeHeaderValue(header: string): string | undefined {
  const m = SENTINEL.exec(header);
  if (!m) return header;
  if (!BASE64.test(m[1]!)) return undefined;
  return Buffer.from(m[1]!, 'base64').toString('utf8');
}

/** How a value travels in a header: as is when it is plain and cannot be mistaken for a sentinel, else Base64. */
export function encodeHeaderValue(value: string): string {
  if (PLAIN.test(value) && !SENTINEL.test(value)) return value;
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}
