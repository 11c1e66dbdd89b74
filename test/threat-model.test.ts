import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CHECKS } from '../src/review/catalog.js';

/*
 * docs/threat-model.md says, per threat, which test shows its control and which review check verifies
 * it from outside. This keeps those claims true: a renamed or deleted test, or a check id the review
 * does not have, fails here rather than leaving the document pointing at nothing.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/threat-model.md'), 'utf8');
const CHECK_IDS = new Set<string>(CHECKS.map((c) => c.id));

/** `test/x.test.ts` › "a test or case name" — the name part optional. */
const TEST_REF = /`(test\/[\w.-]+\.test\.ts)`(?: › "([^"]+)")?/g;

function testRefs(text: string): Array<{ file: string; name?: string }> {
  return [...text.matchAll(TEST_REF)].map((m) => ({ file: m[1]!, ...(m[2] ? { name: m[2] } : {}) }));
}

/** The rows of the STRIDE tables: `| S1 | threat | control | shown by | verified by |`. */
function threatRows(): Array<{ id: string; shownBy: string; verifiedBy: string }> {
  return DOC.split('\n')
    .filter((l) => /^\| [STRIDE]\d+ +\|/.test(l))
    .map((l) => {
      const cells = l.split(' | ').map((c) => c.replace(/^\|? */, '').replace(/ *\|?$/, ''));
      return { id: cells[0]!, shownBy: cells[3] ?? '', verifiedBy: cells[4] ?? '' };
    });
}

describe('docs/threat-model.md stays true', () => {
  it('has threats under every STRIDE letter, each with a test that shows its control and a review check or "—"', () => {
    const rows = threatRows();
    assert.deepEqual([...new Set(rows.map((r) => r.id[0]))].sort(), ['D', 'E', 'I', 'R', 'S', 'T']);
    assert.equal(new Set(rows.map((r) => r.id)).size, rows.length, 'threat ids are unique');
    for (const r of rows) {
      assert.ok(testRefs(r.shownBy).length > 0, `${r.id} names a test file`);
      assert.match(r.verifiedBy, /^(—|BND-\d\d(, BND-\d\d)*)$/, `${r.id}: a check id list or —`);
    }
    assert.ok(
      rows.some((r) => r.verifiedBy !== '—'),
      'the table parsed: some control is verified from outside',
    );
  });

  it('every test file it names exists, and every test name it quotes is in that file', () => {
    const refs = testRefs(DOC);
    assert.ok(refs.length >= 30, `the references parsed (${refs.length})`);
    for (const { file, name } of refs) {
      const path = join(ROOT, file);
      assert.ok(existsSync(path), `${file} exists`);
      if (name !== undefined) assert.ok(readFileSync(path, 'utf8').includes(name), `${file} has a test "${name}"`);
    }
  });

  it('every source file it names as the place of a control exists', () => {
    const sources = [...new Set(DOC.match(/`(src\/[\w./-]+\.ts)`/g) ?? [])].map((m) => m.slice(1, -1));
    assert.ok(sources.length >= 10, `the source references parsed (${sources.length})`);
    for (const file of sources) assert.ok(existsSync(join(ROOT, file)), `${file} exists`);
  });

  it('every review check it names is in the review catalogue, and every check of the catalogue is used', () => {
    const named = new Set(DOC.match(/BND-\d\d/g) ?? []);
    for (const id of named) assert.ok(CHECK_IDS.has(id), `${id} is a check of behalf review`);
    for (const id of CHECK_IDS) assert.ok(named.has(id), `${id} verifies some control in the threat model`);
  });

  it('the check catches a bad reference (control: the same parsing on a broken line)', () => {
    const broken = 'x `test/no-such-file.test.ts` › "nothing" y';
    const [ref] = testRefs(broken);
    assert.deepEqual(ref, { file: 'test/no-such-file.test.ts', name: 'nothing' });
    assert.equal(existsSync(join(ROOT, ref!.file)), false);
  });
});
