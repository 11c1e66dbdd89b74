/**
 * Rules the code keeps (docs/architecture.md §6, §8): one table of JSON-RPC
 * error numbers, no catch that loses what it caught, small files, and a
 * repository that cites nothing outside itself. Each rule is checked on
 * known-bad text first, so a rule that cannot fail is caught too.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lossyCatches, sources } from './helpers/source-rules.js';

const RPC_NUMBER = /-32[0-9]{3}\b/;

describe('code rules', () => {
  it('a JSON-RPC error number appears nowhere in src/ but the error table', () => {
    assert.ok(RPC_NUMBER.test('error: { code: -32601, message }'), 'control: the pattern sees a number');
    const offenders = sources('src')
      .filter(([file, text]) => file !== 'src/errors.ts' && RPC_NUMBER.test(text))
      .map(([file]) => file);
    assert.deepEqual(offenders, []);
    assert.ok(
      sources('src').some(([file, text]) => file === 'src/errors.ts' && RPC_NUMBER.test(text)),
      'the table holds them',
    );
  });

  it('every catch in src/ rethrows, maps with its cause, logs, or says why it does none of these', () => {
    const bad = 'try { x(); } catch {\n  return undefined;\n}\np.catch(() => {});\n';
    assert.equal(lossyCatches('control.ts', bad).length, 2, 'control: silent catches are found');
    const good =
      'try { x(); } catch (err) {\n  throw new BehalfError("internal", undefined, {}, { cause: err });\n}\n// best effort: nobody to tell\np.catch(() => undefined);\n';
    assert.deepEqual(lossyCatches('control.ts', good), []);
    // What was caught carried on (its message into evidence, the error to a function) is reported, not lost…
    const carried =
      'try { x(); } catch (err) {\n  return { error: (err as Error).message };\n}\np.catch((e: unknown) => outcomeOf(e));\n';
    assert.deepEqual(lossyCatches('control.ts', carried), []);
    // …but a caught error that is only named, or only looked at, still is.
    const unread =
      'try { x(); } catch (err) {\n  return err === undefined;\n}\np.catch((err) => undefined);\ntry { y(); } catch (e) {\n  return (e as E).code === 1;\n}\n';
    assert.equal(lossyCatches('control.ts', unread).length, 3, 'control: an unread caught error is found');
    // A formatter puts a chained .catch under its multi-line call: the comment above the call explains it.
    const call = 'x();\n{C}void t\n  .send({\n    a: 1,\n  })\n  .catch(() => undefined);\n';
    assert.deepEqual(
      lossyCatches('control.ts', call.replace('{C}', '// best effort: the caller has its answer\n')),
      [],
    );
    assert.equal(
      lossyCatches('control.ts', call.replace('{C}', '')).length,
      1,
      'control: the same chain without a why',
    );
    const found = sources('src').flatMap(([file, text]) => lossyCatches(file, text));
    assert.deepEqual(
      found.map((f) => `${f.file}:${f.line}: ${f.text}`),
      [],
    );
  });

  it('no file in src/ is over 300 lines', () => {
    const long = sources('src')
      .map(([file, text]) => [file, text.split('\n').length - (text.endsWith('\n') ? 1 : 0)] as const)
      .filter(([, n]) => n > 300);
    assert.deepEqual(long, []);
  });

  it('code and docs cite nothing outside the repository', () => {
    // The rule and its controls are assembled from parts, so this file holds no citation-shaped text of its own.
    const notes = 'design';
    const up = '..' + '/shared/';
    // src/shared/ is the repository's own folder: importing from it cites nothing outside.
    const outside = new RegExp(
      `\\b${notes}\\.md\\b|\\b${notes} §|(?<!\\bfrom '(?:\\.\\.\\/)*)\\.\\.\\/shared\\/|shared\\/${notes}`,
      'i',
    );
    assert.ok(outside.test(`see ${notes} §3 step 6`), 'control');
    assert.ok(outside.test(`as ${up}notes.md says`), 'control: a path outside the repository');
    assert.ok(!outside.test(`import { sha256Hex } from '../${up}hash.js';`), 'control: an import of src/shared/');
    const files = [
      ...sources('src'),
      ...sources('demo'),
      ...sources('test'),
      ...sources('bench'),
      ...sources('docs', '.md'),
    ];
    assert.deepEqual(
      files.filter(([, text]) => outside.test(text)).map(([file]) => file),
      [],
    );
  });
});
