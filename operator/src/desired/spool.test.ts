import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { podTemplate } from './pod.ts';
import { renderRelayConfig } from './relay-config.ts';
import { spoolQuota } from './spool.ts';

const pool = (spec: Partial<RelayPoolSpec> = {}) => withDefaults(relayPool(spec)).resource;
const MiB = 1024 * 1024;

const cases: {
  name: string;
  spec: Partial<RelayPoolSpec>;
  sizeLimit?: string;
  maxBytes?: number;
  minFreeBytes?: number;
}[] = [
  {
    name: 'defaults: the 1Gi ephemeral-storage request is the limit, 100 MiB kept in reserve',
    spec: {},
    sizeLimit: '1Gi',
    maxBytes: 1024 * MiB,
    minFreeBytes: 100 * MiB,
  },
  {
    name: 'an explicit queue.sizeLimit wins over the request',
    spec: { queue: { sizeLimit: '20Gi' } },
    sizeLimit: '20Gi',
    maxBytes: 20 * 1024 * MiB,
    minFreeBytes: 100 * MiB,
  },
  {
    name: 'a small spool keeps a tenth of itself in reserve, so it can still become ready',
    spec: { resources: { requests: { 'ephemeral-storage': '500Mi' } } },
    sizeLimit: '500Mi',
    maxBytes: 500 * MiB,
    minFreeBytes: 50 * MiB,
  },
  {
    name: 'no request and no sizeLimit: no limit, the relay watches the filesystem alone',
    spec: { resources: { requests: { cpu: '1' } } },
  },
  {
    name: 'a persistent spool: the PVC is its own filesystem, no quota',
    spec: { queue: { persistence: { size: '5Gi' }, sizeLimit: '2Gi' } },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const p = pool(c.spec);
    const quota = spoolQuota(p);
    assert.equal(quota?.sizeLimit, c.sizeLimit);
    assert.equal(quota?.maxBytes, c.maxBytes);
    assert.equal(quota?.minFreeBytes, c.minFreeBytes);
    const persistent = Boolean(c.spec.queue?.persistence);
    const tpl = podTemplate({ pool: p, image: 'i', checksum: 'x', persistentSpool: persistent });
    const volume = tpl.spec?.volumes?.find((v) => v.name === 'spool');
    assert.equal(volume?.emptyDir?.sizeLimit, persistent ? undefined : c.sizeLimit);
    const config = renderRelayConfig({
      pool: p,
      domains: [],
      rateLimits: [],
      hasUsers: false,
      hasSmarthostCredentials: false,
    });
    assert.equal(config.spool?.maxBytes, c.maxBytes);
    assert.equal(config.spool?.minFreeBytes, c.minFreeBytes);
  });
}
