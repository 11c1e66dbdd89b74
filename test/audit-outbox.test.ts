import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { HOLD_MS, LINGER_MS, MAX_HELD, Outbox, type Queued } from '../src/audit/writer-outbox.js';

interface Rec extends Queued {
  n: number;
}

/** An outbox whose batches are recorded instead of posted to a thread. */
function outbox(ready = () => true) {
  const batches: Array<{ items: number[]; since: number }> = [];
  const box = new Outbox<Rec>((items, since) => {
    if (!ready()) return false;
    batches.push({ items: items.map((r) => r.n), since });
    return true;
  });
  let n = 0;
  const add = (deferrable = false) => box.add({ n: n++, at: performance.now(), deferrable });
  return { box, batches, add };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audit outbox: when records go to the writer thread', () => {
  it('the records something waits on from one turn of the event loop go as one batch at its end', async () => {
    const { batches, add } = outbox();
    for (let i = 0; i < 5; i++) add();
    assert.equal(batches.length, 0, 'nothing is sent within the turn');
    await turn();
    assert.deepEqual(
      batches.map((b) => b.items),
      [[0, 1, 2, 3, 4]],
    );
  });

  it('records appended while a batch is on its way go together the moment it is answered', async () => {
    const { box, batches, add } = outbox();
    add();
    await turn();
    add();
    add(true);
    add();
    await turn();
    assert.equal(batches.length, 1, 'held behind the batch on its way');
    box.settled();
    assert.deepEqual(
      batches.map((b) => b.items),
      [[0], [1, 2, 3]],
    );
  });

  it('the budget of a held batch runs from its oldest waited-on record, not from when it was sent', async () => {
    const { box, batches, add } = outbox();
    add();
    await turn();
    add(true);
    const held = performance.now();
    add();
    await sleep(1);
    box.settled();
    const since = batches[1]!.since;
    assert.ok(since >= held - 0.5 && since <= held + 0.5, `budget from ${since}, record appended at ${held}`);
  });

  it('a held record goes as a second batch after HOLD_MS when the answer is late', async () => {
    const { batches, add } = outbox();
    add();
    await turn();
    add();
    await sleep(HOLD_MS + 20);
    assert.deepEqual(
      batches.map((b) => b.items),
      [[0], [1]],
    );
  });

  it('MAX_HELD waited-on records go at once, even behind a batch on its way', async () => {
    const { batches, add } = outbox();
    add();
    await turn();
    for (let i = 0; i < MAX_HELD; i++) add();
    assert.equal(batches.length, 2, 'sent within the turn');
    assert.equal(batches[1]!.items.length, MAX_HELD);
  });

  it('a deferrable record alone lingers, then goes by itself', async () => {
    const { batches, add } = outbox();
    add(true);
    await turn();
    assert.equal(batches.length, 0, 'it waits for a record to travel with');
    await sleep(LINGER_MS + 30);
    assert.deepEqual(
      batches.map((b) => b.items),
      [[0]],
    );
  });

  it('nothing is sent before the thread is ready; a flush then sends everything, in order', async () => {
    let ready = false;
    const { box, batches, add } = outbox(() => ready);
    add();
    add(true);
    await turn();
    assert.equal(batches.length, 0);
    assert.equal(box.length, 2);
    ready = true;
    box.flush();
    assert.deepEqual(
      batches.map((b) => b.items),
      [[0, 1]],
    );
  });
});
