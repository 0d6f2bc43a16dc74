import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderRelayConfig, restartChecksum } from './relay-config.ts';
import type { RelayConfigOptions } from './relay-config.ts';
import { relayPool } from '../../../test/helpers/operator/fixtures.ts';
import { withDefaults } from '../api/defaults.ts';
import type { RelayPoolSpec } from '../api/types.ts';

const options = (
  spec: Partial<RelayPoolSpec>,
  extra: Partial<RelayConfigOptions> = {},
): RelayConfigOptions => ({
  pool: withDefaults(relayPool(spec)).resource,
  domains: [],
  rateLimits: [],
  hasUsers: false,
  hasSmarthostCredentials: false,
  ...extra,
});

test('the restart checksum moves for listeners, not for domains or limits', () => {
  const base = restartChecksum(renderRelayConfig(options({})));
  const withDomain = restartChecksum(
    renderRelayConfig(options({}, { domains: [{ domain: 'a.com', suspended: false }] })),
  );
  const otherLimits = restartChecksum(renderRelayConfig(options({ limits: { maxRecipients: 10 } })));
  const otherPort = restartChecksum(renderRelayConfig(options({ listeners: { smtp: { port: 2525 } } })));
  assert.equal(withDomain, base);
  assert.equal(otherLimits, base);
  assert.notEqual(otherPort, base);
});
