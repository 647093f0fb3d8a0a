import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { MetadataPublisher } from '../../agent/fs/metadata-snapshot';

describe('the FUSE threads\' copy of the catalogue', () => {
  it('is dropped in the turn of a change and handed over once on the next, however many changes came', async () => {
    const published: Array<string | null> = [];
    let encoded = 0;
    const publisher = new MetadataPublisher(s => published.push(s?.toString() ?? null), () => Buffer.from(`copy ${++encoded}`));
    publisher.changed();
    publisher.changed();
    assert.deepEqual(published, [null, null]);
    await nextTurn();
    assert.deepEqual(published, [null, null, 'copy 1']);
    publisher.close();
  });

  it('changes that keep coming, each in its own turn, make a copy only after nine times its cost in other work', async () => {
    const published: Array<Buffer | null> = [];
    let encoded = 0;
    const encode = (): Buffer => {
      const began = performance.now();
      while (performance.now() - began < 5); // a large catalogue: 5 ms a copy
      encoded++;
      return Buffer.from('copy');
    };
    let copyHandedOver = (): void => {};
    const publisher = new MetadataPublisher(s => {
      published.push(s);
      if (s !== null) copyHandedOver();
    }, encode);
    const began = performance.now();
    for (let i = 0; i < 200; i++) {
      publisher.changed();
      await nextTurn(); // each change in a turn of its own, as adds over the socket come
    }
    const elapsed = performance.now() - began;
    // The copy after the last change still comes.
    if (published.at(-1) === null) await new Promise<void>(resolve => { copyHandedOver = resolve; });
    assert.notEqual(published.at(-1), null);
    assert.ok(encoded <= elapsed / 50 + 2, `${encoded} copies of 5 ms in ${elapsed.toFixed(0)} ms of 200 changes`);
    publisher.close();
  });

  it('after close (shutdown), a change only drops the copy: none is handed over again', async () => {
    const published: Array<string | null> = [];
    const publisher = new MetadataPublisher(s => published.push(s?.toString() ?? null), () => Buffer.from('copy'));
    publisher.changed();
    publisher.close();
    publisher.changed();
    await nextTurn();
    await nextTurn();
    assert.deepEqual(published, [null, null]);
  });
});
