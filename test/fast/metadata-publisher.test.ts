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
