import { BehalfError } from '../errors.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * One pass over the bytes of a JSON text, before JSON.parse: nesting depth and
 * the number of object keys and array elements, counted outside strings.
 * JSON.parse's cost grows with keys (a flat object of 100,000 keys takes tens
 * of milliseconds; the same bytes as one string, about one), and its result
 * is walked recursively afterwards (policy, redaction, canonical JSON), so
 * both are bounded before anything is built. A pass is about a millisecond
 * per megabyte and stops at the first bound crossed. Syntax is not checked
 * here: whatever this pass lets through, JSON.parse still judges. UTF-8
 * continuation bytes are never ASCII, so scanning bytes is exact.
 */
export function checkJsonBounds(body: Uint8Array, maxDepth: number, maxKeys: number): void {
  const inArray = new Uint8Array(maxDepth + 2);
  let depth = 0;
  let items = 0;
  let inString = false;
  // After `[` or a comma inside an array: the next token that is not `]` starts an element.
  let elementNext = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (elementNext) {
      if (isSpace(c)) continue;
      elementNext = false;
      if (c !== CLOSE_ARRAY && ++items > maxKeys) throw tooMany(maxKeys);
    }
    switch (c) {
      case QUOTE:
        inString = true;
        break;
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        if (++depth > maxDepth)
          throw new BehalfError('json_too_deep', `Invalid params: nesting too deep (more than ${maxDepth} levels)`);
        inArray[depth] = c === OPEN_ARRAY ? 1 : 0;
        elementNext = c === OPEN_ARRAY;
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        // Unbalanced input is JSON.parse's to refuse; the count only must not go below zero.
        if (depth > 0) depth--;
        break;
      case COLON:
        // Exactly one colon per object key, outside strings.
        if (++items > maxKeys) throw tooMany(maxKeys);
        break;
      case COMMA:
        elementNext = inArray[depth] === 1;
        break;
    }
  }
}

function tooMany(maxKeys: number): BehalfError {
  return new BehalfError('json_too_many_keys', `Request too large: more than ${maxKeys} keys and array elements`);
}
