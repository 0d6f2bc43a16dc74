// The suppression list shared through a real redis-server by the relays of a pool: a change on
// one relay (API add, its own hard bounce, a removal) takes effect at RCPT on the other; with the
// store down mail keeps flowing on local decisions, the metrics say so, a change made meanwhile
// waits in the outbox and reaches the other relay once the store is back; a relay that joins
// later loads the whole list from the store.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  rawMessage,
  removeDir,
  sendMessage,
  startScripted,
  tempDir,
  waitFor,
  type RelayProcess,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';
import { startRedis, startRelaysOnStore, waitStore, type RedisServer } from '../helpers/redis.ts';

describe('relay shared state (redis-server)', () => {
  let upstream: ScriptedUpstream;
  let redis: RedisServer;
  const relays: RelayProcess[] = [];
  const dirs: string[] = [];

  /** Whether `relay` takes mail for `to` (RCPT TO answered 250). */
  const accepts = async (relay: RelayProcess, to: string) =>
    (await sendMessage(relay.ports.smtp, { from: 'a@example.com', to: [to], raw: rawMessage(`to-${to}`) }))
      .ok;
  const add = (relay: RelayProcess, address: string) =>
    relay.http('/api/suppressions', { method: 'POST', body: JSON.stringify({ address }) });

  before(async () => {
    upstream = await startScripted();
    const redisDir = await tempDir('redis');
    dirs.push(redisDir);
    redis = await startRedis(redisDir);
    relays.push(...(await startRelaysOnStore({ redis, upstreamPort: upstream.port, count: 2, dirs })));
  });
  after(async () => {
    for (const relay of relays) await relay.stop();
    await upstream?.stop();
    await redis?.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  test('an address added on one relay is refused by the other', async () => {
    const [a, b] = relays as [RelayProcess, RelayProcess];
    assert.equal(await accepts(b, 'shared@example.org'), true);
    assert.equal((await add(a, 'shared@example.org')).status, 201);
    await waitFor(async () => !(await accepts(b, 'shared@example.org')), 10000, 'relay b to refuse');
  });

  test("one relay's own hard bounce suppresses the recipient on the other", async () => {
    const [a, b] = relays as [RelayProcess, RelayProcess];
    upstream.onRcpt = (to) =>
      to === 'bounced@example.org' ? { code: 550, message: '5.1.1 User unknown' } : undefined;
    assert.equal(await accepts(b, 'bounced@example.org'), true);
    await waitFor(async () => !(await accepts(a, 'bounced@example.org')), 10000, 'relay a to refuse');
    upstream.onRcpt = () => undefined;
  });

  test('a removal on one relay lets the recipient through on the other', async () => {
    const [a, b] = relays as [RelayProcess, RelayProcess];
    assert.equal(
      (await b.http('/api/suppressions?address=shared@example.org', { method: 'DELETE' })).status,
      200,
    );
    await waitFor(() => accepts(a, 'shared@example.org'), 10000, 'relay a to accept again');
  });

  test('store down: mail flows on local decisions, the metrics say so, a change waits and arrives when it is back', async () => {
    const [a, b] = relays as [RelayProcess, RelayProcess];
    await redis.stop();
    for (const relay of relays) await waitStore(relay, false);
    assert.equal(await accepts(a, 'fine@example.org'), true);
    assert.equal(await accepts(a, 'bounced@example.org'), false);
    assert.equal((await add(a, 'during-outage@example.org')).status, 201);
    assert.equal(await accepts(a, 'during-outage@example.org'), false);
    assert.equal(await a.metric('mailfleet_relay_shared_state_outbox_changes'), 1);
    assert.ok((await a.metric('mailfleet_relay_shared_state_errors_total', { operation: 'publish' })) >= 1);
    assert.equal(await accepts(b, 'during-outage@example.org'), true);
    await redis.restart();
    await waitFor(
      async () => !(await accepts(b, 'during-outage@example.org')),
      15000,
      'the outbox to reach relay b',
    );
    // Relay a empties its outbox once the store took the change, which b may see first.
    await waitFor(
      async () => (await a.metric('mailfleet_relay_shared_state_outbox_changes')) === 0,
      15000,
      "relay a's outbox to empty",
    );
  });

  test('a relay that joins later loads the whole list from the store', async () => {
    const late = (await startRelaysOnStore({ redis, upstreamPort: upstream.port, count: 1, dirs }))[0]!;
    relays.push(late);
    await waitFor(
      async () => (await late.metric('mailfleet_relay_suppression_entries')) === 2,
      10000,
      'the full load',
    );
    assert.equal(await accepts(late, 'bounced@example.org'), false);
    assert.equal(await accepts(late, 'during-outage@example.org'), false);
    assert.equal(await accepts(late, 'shared@example.org'), true);
  });
});
