/**
 * The pre-scan that bounds a body's JSON before JSON.parse (src/gateway/json-bounds.ts)
 * counts exactly what the parsed value holds: it refuses a text exactly when
 * its nesting depth or its number of object keys and array elements is past
 * the bound, whatever the strings in it contain.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BehalfError } from '../src/errors.js';
import { checkJsonBounds } from '../src/gateway/json-bounds.js';

/** Depth and item count of a parsed value, walked the obvious way. */
function measure(v: unknown): { depth: number; items: number } {
  if (v === null || typeof v !== 'object') return { depth: 0, items: 0 };
  const children = Array.isArray(v) ? v : Object.values(v);
  let depth = 0;
  let items = children.length;
  for (const c of children) {
    const m = measure(c);
    depth = Math.max(depth, m.depth);
    items += m.items;
  }
  return { depth: depth + 1, items };
}

function refusal(text: string, maxDepth: number, maxKeys: number): string | undefined {
  try {
    checkJsonBounds(Buffer.from(text), maxDepth, maxKeys);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof BehalfError);
    return err.code;
  }
}

describe('JSON bounds pre-scan', () => {
  it('refuses exactly the texts past either bound (property, against the parsed value)', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        (value, maxDepth, maxKeys, pretty) => {
          const text = JSON.stringify(value, null, pretty ? 2 : undefined);
          const m = measure(value);
          const code = refusal(text, maxDepth, maxKeys);
          if (m.depth > maxDepth) assert.ok(code !== undefined, `depth ${m.depth} > ${maxDepth}: ${text}`);
          else if (m.items > maxKeys)
            assert.equal(code, 'json_too_many_keys', `${m.items} items > ${maxKeys}: ${text}`);
          else assert.equal(code, undefined, `within bounds (depth ${m.depth}, ${m.items} items): ${text}`);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('brackets, colons, commas, quotes and backslashes inside strings are text', () => {
    const tricky = JSON.stringify({ a: '[[{{:,,"\\"]]}}', b: ['\\', '"', '\\"[', 'é[{'] });
    assert.equal(refusal(tricky, 3, 6), undefined);
    assert.equal(refusal(tricky, 1, 6), 'json_too_deep');
    assert.equal(refusal(tricky, 3, 5), 'json_too_many_keys');
  });

  it('names the bound in the message the client sees', () => {
    assert.throws(
      () => checkJsonBounds(Buffer.from('[[[[[]]]]]'), 4, 100),
      (e: BehalfError) =>
        e.code === 'json_too_deep' && e.publicMessage === 'Invalid params: nesting too deep (more than 4 levels)',
    );
    assert.throws(
      () => checkJsonBounds(Buffer.from('{"a":[1,2,3]}'), 4, 3),
      (e: BehalfError) =>
        e.code === 'json_too_many_keys' && e.publicMessage === 'Request too large: more than 3 keys and array elements',
    );
  });
});
