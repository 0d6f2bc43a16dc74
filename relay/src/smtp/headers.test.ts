import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixSubmissionHeaders } from './headers.ts';

const options = {
  messageId: '<q1@relay.test>',
  date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
  removeClientHeaders: false,
};
const fix = (text: string, over = {}) =>
  fixSubmissionHeaders(Buffer.from(text, 'latin1'), { ...options, ...over }).toString('latin1');

describe('fixSubmissionHeaders', () => {
  test('adds Date and Message-ID when both are missing, body untouched', () => {
    assert.equal(
      fix('From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n'),
      'From: a@example.com\r\nSubject: x\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\nMessage-ID: <q1@relay.test>\r\n\r\nbody\r\n',
    );
  });
  test('keeps an existing Date and Message-ID (any case)', () => {
    const text =
      'From: a@example.com\r\ndate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMESSAGE-ID: <x@y>\r\n\r\nb\r\n';
    assert.equal(fix(text), text);
  });
  test('removes client-identifying headers, folded lines included, when asked', () => {
    const text =
      'Received: from laptop\r\n\tby mua; Thu, 1 Jan 2026\r\nX-Mailer: Foo 1.0\r\nUser-Agent: Bar\r\nX-Originating-IP: [192.0.2.9]\r\nFrom: a@example.com\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\nReceived: in body stays\r\n';
    assert.equal(
      fix(text, { removeClientHeaders: true }),
      'From: a@example.com\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\nReceived: in body stays\r\n',
    );
    assert.equal(fix(text), text, 'kept when not asked');
  });
  test('a message without a body gets an empty one', () => {
    assert.equal(
      fix('Subject: x\r\nDate: d\r\nMessage-ID: <m@x>'),
      'Subject: x\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\n',
    );
  });
});
