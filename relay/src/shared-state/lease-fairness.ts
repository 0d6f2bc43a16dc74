// Fairness for pool-wide connection leases. Without it, a relay that closes a connection and asks
// for the next one in the same breath (its release and its request reach the store back to back)
// takes the freed room again and again, and a relay with a large backlog starves its peers, which
// ask every 250 ms. With it, a relay refused for lack of room registers as a waiter (a sorted set
// per limit destination beside the leases, scored by the entry's expiry: it lives while the relay
// keeps asking), and while somebody else waits, a relay already holding its fair share of the cap
// (the cap divided by the relays holding or waiting, rounded up) yields the room instead of taking
// it. Below its share a relay is never held back, and with nobody waiting the whole cap goes to
// whoever asks: fairness never leaves room unused for longer than a waiter takes to come back. A
// relay that waits no more takes its entry out (the pool's gate withdraw); a killed one's lapses.
//
// The rule is `fairLeaseDecision` (pure, table-tested); LEASE_SCRIPT is the same rule in Lua, run
// by the store atomically with the count and the add (test/integration/relay-pool-connection-
// fairness.test.ts runs the table through both).

/** What the store decides for one limit destination: room for the asker, none, or room left to waiting peers. */
export type FairLeaseDecision = 'grant' | 'full' | 'yield';

export interface FairLeaseInput {
  /** Connections the whole pool may have open to the limit destination. */
  cap: number;
  /** Leases held per relay instance (unexpired), the asker's included. */
  held: ReadonlyMap<string, number>;
  /** Relays waiting for room (unexpired entries); may include the asker. */
  waiting: ReadonlySet<string>;
  /** The relay asking. */
  asker: string;
}

/** The store's decision for one limit destination. Pure. */
export function fairLeaseDecision(i: FairLeaseInput): FairLeaseDecision {
  let total = 0;
  for (const n of i.held.values()) total += n;
  if (total >= i.cap) return 'full';
  const active = new Set([...i.held.keys(), ...i.waiting, i.asker]);
  const share = Math.ceil(i.cap / active.size);
  const othersWait = [...i.waiting].some((w) => w !== i.asker);
  return othersWait && (i.held.get(i.asker) ?? 0) >= share ? 'yield' : 'grant';
}

/** A connection under several pool-wide caps: room only if every one grants; no room anywhere beats yielding. Pure. */
export function combinedLeaseDecision(decisions: readonly FairLeaseDecision[]): FairLeaseDecision {
  if (decisions.includes('full')) return 'full';
  return decisions.includes('yield') ? 'yield' : 'grant';
}

/** The script's reply for each decision. */
export const LEASE_REPLY: Readonly<Record<FairLeaseDecision, number>> = { grant: 1, full: 0, yield: 2 };

/**
 * How long a waiter's entry lives without the relay asking again: a relay refused asks every
 * 250 ms while it has mail waiting, so this survives a few slow answers, and room left free for a
 * waiter killed before it could withdraw is free again after it.
 */
export const WAITER_TTL_MS = 2000;

// KEYS[1..n]: the lease sets (one per limit destination); KEYS[n+1..2n]: their waiter sets.
// ARGV[1]: the lease's member ("<instance>:<seq>"), ARGV[2]: its lifetime (ms), ARGV[3]: the
// asking relay's instance, ARGV[4]: a waiter entry's lifetime (ms), ARGV[4 + i]: the cap for
// KEYS[i]. Returns 1 (granted: added to every lease set), 0 (a set is full: registered as a
// waiter where full) or 2 (yielded to waiting relays). fairLeaseDecision says the same per set.
export const LEASE_SCRIPT = `
local n = #KEYS / 2
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[3]
local full, yield = {}, false
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[n + i], '-inf', now)
  local cap = tonumber(ARGV[4 + i])
  local leases = redis.call('ZRANGE', KEYS[i], 0, -1)
  if #leases >= cap then
    full[#full + 1] = n + i
  else
    local active, count, mine, othersWait = {}, 0, 0, false
    for _, m in ipairs(leases) do
      local who = string.match(m, '^(.*):[^:]*$') or m
      if not active[who] then active[who] = true; count = count + 1 end
      if who == me then mine = mine + 1 end
    end
    for _, w in ipairs(redis.call('ZRANGE', KEYS[n + i], 0, -1)) do
      if w ~= me then
        othersWait = true
        if not active[w] then active[w] = true; count = count + 1 end
      end
    end
    if not active[me] then count = count + 1 end
    if othersWait and mine >= math.ceil(cap / count) then yield = true end
  end
end
if #full > 0 then
  for _, k in ipairs(full) do
    redis.call('ZADD', KEYS[k], now + tonumber(ARGV[4]), me)
    redis.call('PEXPIRE', KEYS[k], ARGV[4])
  end
  return 0
end
if yield then return 2 end
for i = 1, n do
  redis.call('ZADD', KEYS[i], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
  redis.call('ZREM', KEYS[n + i], me)
end
return 1
`;
