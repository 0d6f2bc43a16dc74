// DNS verification against dnsmasq on a loopback port: a wrong DKIM key and a missing SPF record
// are spelled out in DNSVerified=False; once the right records are served, the periodic re-check
// turns it True without any change to the SendingDomain.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { ChildProcess } from 'node:child_process';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { freePort, spawnDnsmasq, stopProcess } from '../helpers/relay/peers.ts';

const NS = 'mail';
const DOMAIN = 'verify.example.test';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let dns: ChildProcess | undefined;
let dnsPort = 0;
const k = (args: string[]) => cp.kubectl(args);
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;
const dnsVerified = (o: { status?: { conditions?: { type: string }[] } }) =>
  o.status?.conditions?.find((c) => c.type === 'DNSVerified') as
    { status: string; reason: string; message: string } | undefined;

/** dnsmasq answering for example.test only (NXDOMAIN for other names there) with these TXT records
 * (unquoted: without a shell dnsmasq would keep the quotes; the values hold no commas). */
async function serveTxt(records: Record<string, string>): Promise<void> {
  if (dns) await stopProcess(dns, 'SIGTERM');
  dns = spawnDnsmasq(dnsPort, [
    '--local=/example.test/',
    ...Object.entries(records).map(([name, value]) => `--txt-record=${name},${value}`),
  ]);
}

before(async () => {
  dnsPort = await freePort();
  await serveTxt({});
  cp = await startCluster();
  await k(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'dns', [
    '--dns-server',
    `127.0.0.1:${dnsPort}`,
    '--dns-interval',
    '2',
    '--scrape-interval',
    '0',
  ]);
  for (const object of [
    {
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'p', namespace: NS },
      spec: { replicas: 1 },
    },
    {
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'SendingDomain',
      metadata: { name: 'verify', namespace: NS },
      spec: { domain: DOMAIN, poolRef: { name: 'p' }, dkim: { selector: 's1', algorithm: 'ed25519-sha256' } },
    },
  ])
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(object) });
});

after(async () => {
  await operator?.stop();
  await cp?.stop();
  if (dns) await stopProcess(dns, 'SIGTERM');
});

test('nothing published: each missing record is named', async () => {
  const sd = await eventually('DNSVerified reported', async () => {
    const o = await json(['-n', NS, 'get', 'sd/verify']);
    return dnsVerified(o) ? o : undefined;
  });
  const c = dnsVerified(sd);
  assert.equal(c?.status, 'False');
  assert.equal(c?.reason, 'RecordsMismatch');
  assert.match(c?.message ?? '', /s1\._domainkey\.verify\.example\.test TXT: no v=DKIM1 record published/);
  assert.match(c?.message ?? '', /verify\.example\.test TXT: no v=spf1 record published/);
  assert.match(c?.message ?? '', /_dmarc\.verify\.example\.test TXT: no v=DMARC1 record published/);
});

test('a stale DKIM key is spelled out; the right records turn DNSVerified True on re-check', async () => {
  const sd = await json(['-n', NS, 'get', 'sd/verify']);
  const dkim = sd.status.dkim.dnsRecord as { name: string; value: string };
  const spf = sd.status.spf as { name: string; value: string };
  const dmarc = sd.status.dmarc as { name: string; value: string };
  await serveTxt({
    [dkim.name]: 'v=DKIM1; k=ed25519; p=c3RhbGVrZXlzdGFsZWtleXN0YWxla2V5c3RhbGVrZXk=',
    [spf.name]: spf.value,
    [dmarc.name]: dmarc.value,
  });
  const stale = await eventually('the stale key reported', async () => {
    const c = dnsVerified(await json(['-n', NS, 'get', 'sd/verify']));
    return c?.message.includes('differs from the key in use') ? c : undefined;
  });
  assert.equal(stale.status, 'False');
  assert.match(stale.message, /published "v=DKIM1; k=ed25519; p=c3Rh/);
  assert.doesNotMatch(stale.message, /spf1|DMARC1/);

  await serveTxt({ [dkim.name]: dkim.value, [spf.name]: spf.value, [dmarc.name]: dmarc.value });
  const verified = await eventually('DNSVerified=True', async () => {
    const c = dnsVerified(await json(['-n', NS, 'get', 'sd/verify']));
    return c?.status === 'True' ? c : undefined;
  });
  assert.equal(verified.reason, 'RecordsMatch');
});

const relaySelector = async () => {
  const cm = await json(['-n', NS, 'get', 'configmap/p-config']);
  const config = parse(cm.data['relay.yaml']) as {
    sendingDomains: { domain: string; dkim?: { selector: string } }[];
  };
  return config.sendingDomains.find((d) => d.domain === DOMAIN)?.dkim?.selector;
};

test('a new selector signs only once its record is published; until then the old key keeps signing', async () => {
  const before = await json(['-n', NS, 'get', 'sd/verify']);
  const old = before.status.dkim.dnsRecord as { name: string; value: string };
  const spf = before.status.spf as { name: string; value: string };
  const dmarc = before.status.dmarc as { name: string; value: string };
  await k(['-n', NS, 'patch', 'sd/verify', '--type=merge', '-p', '{"spec":{"dkim":{"selector":"s2"}}}']);
  const pending = await eventually('rotation pending', async () => {
    const o = await json(['-n', NS, 'get', 'sd/verify']);
    return o.status?.dkim?.pendingSelector === 's2' ? o : undefined;
  });
  assert.equal(pending.status.dkim.selector, 's1');
  assert.equal(await relaySelector(), 's1', 'the relays still sign with s1');
  // The Event is written after the status: waited for, not read once.
  await eventually(
    'the DKIMKeyGenerated Event',
    async () =>
      /DKIMKeyGenerated/.test(
        (await k(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=verify'])).stdout,
      ),
    30_000,
  );
  const next = pending.status.dkim.pendingDnsRecord as { name: string; value: string };
  assert.equal(next.name, `s2._domainkey.${DOMAIN}`);
  await serveTxt({
    [old.name]: old.value,
    [next.name]: next.value,
    [spf.name]: spf.value,
    [dmarc.name]: dmarc.value,
  });
  await eventually('switched to s2', async () => (await relaySelector()) === 's2');
  const after = await json(['-n', NS, 'get', 'sd/verify']);
  assert.equal(after.status.dkim.selector, 's2');
  assert.equal(after.status.dkim.pendingSelector, undefined);
});

test('a SendingDomain deleted and applied again keeps its key', async () => {
  const keyBefore = await json(['-n', NS, 'get', 'secret/verify-dkim-s2']);
  const sd = await json(['-n', NS, 'get', 'sd/verify']);
  await k(['-n', NS, 'delete', 'sd/verify', '--wait=true']);
  await new Promise((r) => setTimeout(r, 3_000)); // the garbage collector's turn
  await cp.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'SendingDomain',
      metadata: { name: 'verify', namespace: NS },
      spec: sd.spec,
    }),
  });
  await eventually('Ready again', async () => {
    const o = await json(['-n', NS, 'get', 'sd/verify']);
    return o.status?.conditions?.some(
      (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True',
    );
  });
  const keyAfter = await json(['-n', NS, 'get', 'secret/verify-dkim-s2']);
  assert.equal(keyAfter.metadata.uid, keyBefore.metadata.uid, 'the same key Secret');
  const again = await json(['-n', NS, 'get', 'sd/verify']);
  assert.equal(
    again.status.dkim.dnsRecord.value,
    sd.status.dkim.dnsRecord.value,
    'the published record still holds',
  );
});
