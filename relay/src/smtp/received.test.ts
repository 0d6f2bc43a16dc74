import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protocolKeyword, receivedHeader } from './received.ts';

test('the Received header names client, relay, protocol, id and the single recipient', () => {
  const h = receivedHeader({
    helo: 'client.example',
    clientAddress: '127.0.0.1',
    byHost: 'relay.example.net',
    protocol: 'ESMTPS',
    queueId: 'Q1',
    recipients: ['a@example.org'],
    date: new Date(Date.UTC(2026, 10, 30, 10, 0, 0)),
  });
  assert.equal(
    h,
    'Received: from client.example ([127.0.0.1])\r\n\tby relay.example.net (mailfleet) with ESMTPS id Q1\r\n\tfor <a@example.org>;\r\n\tMon, 30 Nov 2026 10:00:00 +0000\r\n',
  );
});

test('several recipients are not disclosed, and a hostile HELO is sanitised', () => {
  const h = receivedHeader({
    helo: 'evil\r\nX-Injected: 1',
    clientAddress: '::1',
    byHost: 'r',
    protocol: 'ESMTP',
    queueId: 'Q2',
    recipients: ['a@x', 'b@x'],
    date: new Date(0),
  });
  assert.doesNotMatch(h, /for </);
  assert.doesNotMatch(h, /\r\nX-Injected/);
});

test('protocol keywords follow RFC 3848', () => {
  assert.equal(protocolKeyword(false, false), 'ESMTP');
  assert.equal(protocolKeyword(true, true), 'ESMTPSA');
  assert.equal(protocolKeyword(false, true), 'ESMTPA');
});

test('an encrypted session names its TLS version and cipher', () => {
  const h = receivedHeader({
    helo: 'c',
    clientAddress: '127.0.0.1',
    byHost: 'r',
    protocol: 'ESMTPSA',
    queueId: 'Q3',
    recipients: [],
    date: new Date(0),
    tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
  });
  assert.match(
    h,
    /^Received: from c \(\[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384\)\r\n\tby r /,
  );
});
