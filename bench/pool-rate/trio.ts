// The three servers each pool-rate bench compares: three mailfleet relays (with or without the
// pool's shared store) or three Postfix instances, all relaying to one upstream.
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { freePort, relayConfig, startRelay, type RelayProcess } from '../../test/helpers/relay/peers.ts';
import { waitStore } from '../../test/helpers/redis.ts';
import { startPostfix, waitPort } from '../lib/smtp.ts';

export type Servers = { ports: number[]; stop: () => Promise<void> };
export type SharedStore = { url: string; passwordFile: string };

/** Three relays under one RateLimit; with `shared`, on the pool's store (waited for). */
export function relayTrio(
  work: string,
  keyPrefix: string,
  shared: SharedStore | undefined,
  /** The RateLimit as the relay config file spells it. */
  rateLimit: Record<string, unknown>,
) {
  return async (upstreamPort: number): Promise<Servers> => {
    const started: RelayProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const config = relayConfig(mkdtempSync(join(work, 'spool-')), upstreamPort, {
        ...(shared ? { sharedState: { ...shared, keyPrefix } } : {}),
        rateLimits: [rateLimit],
      });
      started.push(await startRelay(config));
    }
    if (shared) for (const r of started) await waitStore(r, true);
    return {
      ports: started.map((r) => r.ports.smtp),
      stop: async () => {
        for (const r of started) await r.stop();
      },
    };
  };
}

/** Three Postfix instances named `<name>-<i>` under `work`, each with these main.cf lines. */
export function postfixTrio(work: string, name: string, extraMain: string[]) {
  return async (upstreamPort: number): Promise<Servers> => {
    const dirs: string[] = [];
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = join(work, `${name}-${i}`);
      const port = await freePort();
      startPostfix(dir, port, upstreamPort, { extraMain });
      await waitPort(port);
      dirs.push(dir);
      ports.push(port);
    }
    return {
      ports,
      stop: async () => {
        for (const dir of dirs) spawnSync('postfix', ['-c', join(dir, 'conf'), 'stop']);
      },
    };
  };
}
