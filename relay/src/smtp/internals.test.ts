// The relay reaches into smtp-server's internals in two places (smtp/server.ts: the early greeting
// for trusted clients and AUTH hidden before STARTTLS; smtp/connection-guard.ts: the raw-byte
// guard in front of the command parser). The version is pinned exactly in package.json; this test
// fails when an upgrade no longer has what those places use, before anything misbehaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const require = createRequire(import.meta.url);

test('smtp-server is pinned to one exact version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  assert.match(
    pkg.dependencies['smtp-server'] ?? '',
    /^\d+\.\d+\.\d+$/,
    'no range: a minor release may change internals',
  );
  const installed = (require('smtp-server/package.json') as { version: string }).version;
  assert.equal(installed, pkg.dependencies['smtp-server']);
});

test('the internals the relay overrides or reads are there', async () => {
  for (const method of [
    'init',
    '_setListeners',
    'connectionReady',
    '_isSupported',
    '_createParser',
    'send',
    'close',
  ])
    assert.equal(
      typeof (SMTPConnection.prototype as unknown as Record<string, unknown>)[method],
      'function',
      method,
    );
  assert.equal(
    typeof (SMTPServer.prototype as unknown as Record<string, unknown>)._onClientConnect,
    'function',
  );
  // The fields the guard reads exist on a live connection once it is set up.
  const server = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'] });
  assert.ok((server as unknown as { connections: Set<unknown> }).connections instanceof Set);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const seen = new Promise<Record<string, unknown>>((resolve) => {
    const original = server.onConnect.bind(server);
    server.onConnect = (session, cb) => {
      const connection = [
        ...(server as unknown as { connections: Set<Record<string, unknown>> }).connections,
      ][0];
      if (connection) resolve(connection);
      original(session, cb);
    };
  });
  const socket = connect((server.server.address() as AddressInfo).port, '127.0.0.1');
  const connection = await seen;
  for (const field of ['id', '_parser', '_socket', 'session', 'secure'])
    assert.ok(field in connection, `SMTPConnection has ${field}`);
  const parser = connection._parser as Record<string, unknown>;
  assert.equal(typeof parser._remainder, 'string', 'parser._remainder');
  assert.equal(typeof parser._dataMode, 'boolean', 'parser._dataMode');
  assert.equal(typeof parser.write, 'function', 'parser.write');
  socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
