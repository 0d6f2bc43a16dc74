import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitScraped } from './scraped.ts';

test('the scraped pods split into relays (whose queues a drain waits for) and tracker pods', () => {
  const { relays, trackers } = splitScraped([
    { kind: 'relay', pod: 'news-0', queued: 3, scrapedAt: 10 },
    { kind: 'tracker', pod: 'news-tracker-x', scrapedAt: 10, eventsOldestSeconds: 40 },
    { kind: 'relay', pod: 'news-1' },
  ]);
  assert.deepEqual(relays, [{ pod: 'news-0', queued: 3, scrapedAt: 10 }, { pod: 'news-1' }]);
  assert.deepEqual(trackers, [{ pod: 'news-tracker-x', scrapedAt: 10, eventsOldestSeconds: 40 }]);
});
