import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from './load.ts';

test('relative file paths are resolved against the config file directory', () => {
  const text = [
    'tls: {certFile: tls/tls.crt, keyFile: tls/tls.key}',
    'auth: {mode: Optional, usersFile: users}',
    'handoff: {secretFile: handoff/secret, service: pool-headless.mail.svc}',
    'spool: {dir: /var/spool/mailfleet}',
    'returnPath: {keyFile: returnpath/key}',
  ].join('\n');
  const result = parseConfigText(text, '/etc/mailfleet/relay.yaml');
  assert.ok(result.ok);
  assert.equal(result.config.tls?.certFile, '/etc/mailfleet/tls/tls.crt');
  assert.equal(result.config.auth.usersFile, '/etc/mailfleet/users');
  assert.equal(result.config.handoff?.secretFile, '/etc/mailfleet/handoff/secret');
  // The operator renders it relative; left as is, a pod (cwd /) could not start.
  assert.equal(result.config.returnPath?.keyFile, '/etc/mailfleet/returnpath/key');
  assert.equal(result.config.spool.dir, '/var/spool/mailfleet');
});
