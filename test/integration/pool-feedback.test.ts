// The feedback loop through the control plane: a RelayPool whose SendingDomains have a return path,
// its two pods run as real relay processes by the test kubelet, sharing state through a real
// redis-server. The relays hand mail to a real Postfix (the "mailbox provider's" first hop), which
// accepts every recipient, then is refused by the next hop for the mailboxes that are gone and
// sends its own RFC 3464 DSNs to the signed VERP senders, routed to a pod's return-path listener.
// The operator scrapes both pods, counts those bounces after delivery, and writes spec.suspend and
// the reason on the SendingDomain through the API server; a real feedback-loop (ARF) report does
// the same for the complaint rate. Nothing in between is called directly by the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import { LOCAL_NODE_LABEL, readyPods, startKubelet } from '../helpers/operator/kubelet.ts';
import { sendersAccepted } from '../helpers/operator/ledger.ts';
import type { Kubelet, RunningPod } from '../helpers/operator/kubelet.ts';
import { startPostfix, type PostfixInstance } from '../helpers/relay/postfix.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import {
  freePort,
  metricValue,
  removeDir,
  sendMessage,
  startScripted,
  tempDir,
  waitFor,
  type ScriptedUpstream,
} from '../helpers/relay/peers.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
let kubelet: Kubelet | undefined;
let upstream: ScriptedUpstream | undefined;
let postfix: PostfixInstance | undefined;
let redis: RedisServer | undefined;
let dir = '';
/** The pod mail is submitted to, and the pod whose return-path listener Postfix's DSNs reach. */
let sender: RunningPod;
let receiver: RunningPod;

const k = async (args: string[], input?: string) => {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON
const json = async (args: string[]) => JSON.parse(await k([...args, '-o', 'json'])) as Record<string, any>;
const apply = (o: Record<string, unknown>) =>
  k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'mailfleet.dev/v1alpha1', ...o }));
const condition = (o: { status?: { conditions?: { type: string }[] } }, type: string) =>
  o.status?.conditions?.find((c) => c.type === type) as
    { status: string; reason: string; message: string } | undefined;

/** A domain with a return path whose autopilot suspends it over policy. */
function domain(name: string, fqdn: string, returnPath: string, policy: Record<string, unknown>) {
  return {
    kind: 'SendingDomain',
    metadata: { name, namespace: NS },
    spec: {
      domain: fqdn,
      returnPath,
      poolRef: { name: 'fb' },
      dkim: { selector: 's1', algorithm: 'ed25519-sha256' },
      bouncePolicy: { window: '10m', action: 'Suspend', ...policy },
    },
  };
}

before(async () => {
  dir = await tempDir('pool-feedback');
  chmodSync(dir, 0o755); // Postfix's unprivileged daemons traverse it
  cp = await startCluster(1);
  await k(['create', 'namespace', NS]);
  await mkdir(path.join(dir, 'redis'));
  redis = await startRedis(path.join(dir, 'redis'), 'store-password-0123456789');
  await k(['-n', NS, 'create', 'secret', 'generic', 'store', `--from-literal=password=${redis.password}`]);
  operator = await startOperator(cp, 'feedback', ['--scrape-interval', '1']);
  // The provider's inbound: accepts from Postfix, except mailboxes that are gone.
  upstream = await startScripted();
  upstream.onRcpt = (to) =>
    to.startsWith('gone')
      ? { code: 550, message: `5.1.1 <${to}>: Recipient address rejected: User unknown` }
      : undefined;
  const postfixPort = await freePort();
  kubelet = await startKubelet(cp);
  // Every recipient the bounce test sends (6) before the autopilot may judge; 2 of them bounce.
  await apply(domain('shop', 'shop.example', 'bounces.shop.example', { maxBounceRate: 0.2, minMessages: 6 }));
  // 4 recipients; one complaint is 25%, far over the default maxComplaintRate (0.3%).
  await apply(domain('news', 'news.example', 'fbl.news.example', { maxBounceRate: 0.5, minMessages: 4 }));
  await apply({
    kind: 'RelayPool',
    metadata: { name: 'fb', namespace: NS },
    spec: {
      replicas: 2,
      allowedNetworks: ['127.0.0.0/8'],
      delivery: {
        mode: 'Smarthost',
        smarthost: { host: '127.0.0.1', port: postfixPort, tls: 'StartTLSOpportunistic' },
      },
      retry: { firstRetry: '3s', maxBackoff: '5s' },
      sharedState: { url: redis.url, passwordSecretRef: { name: 'store' } },
      // The public name of the return-path Service (no ehloName: the MX cannot come from it).
      returnPath: { host: 'mx-in.shop.example' },
      scheduling: { nodeSelector: { [LOCAL_NODE_LABEL]: 'true' } },
    },
  });
  const pods = await readyPods(kubelet, 'fb', 2);
  // The SendingDomains reach the operator over another watch than the RelayPool: a pod may start
  // with one of them missing and get it at the next ConfigMap sync. Waited for, then asserted.
  const domains = async (pod: RunningPod) =>
    (
      (
        parse(await readFile(path.join(pod.configDir, 'relay.local.yaml'), 'utf8')) as {
          sendingDomains?: { domain: string; returnPath?: string }[];
        }
      ).sendingDomains ?? []
    )
      .map((d) => [d.domain, d.returnPath])
      .sort();
  const both = [
    ['news.example', 'fbl.news.example'],
    ['shop.example', 'bounces.shop.example'],
  ];
  await waitFor(
    async () =>
      (await Promise.all(pods.map(domains))).every((d) => JSON.stringify(d) === JSON.stringify(both)),
    60_000,
    'both pods run with both return-path domains',
  );
  for (const pod of pods)
    assert.deepEqual(await domains(pod), both, `${pod.pod.metadata.name} runs with both return-path domains`);
  // ...and the relays have reloaded them: each accepts both senders.
  await sendersAccepted(pods, ['news@shop.example', 'letter@news.example'], 60_000);
  [sender, receiver] = pods as [RunningPod, RunningPod];
  const listener = `smtp:[${receiver.ip}]:${receiver.ports.returnPath}`;
  postfix = startPostfix({
    dir: path.join(dir, 'postfix'),
    port: postfixPort,
    relayhost: `[127.0.0.1]:${upstream.port}`,
    // The return-path domains' MX: the pool's return-path Service, here one of its pods.
    transports: { 'bounces.shop.example': listener, 'fbl.news.example': listener },
  });
});

after(async () => {
  postfix?.stop();
  await kubelet?.stop();
  await operator?.stop();
  await upstream?.stop();
  await redis?.stop();
  await cp?.stop();
  if (dir) await removeDir(dir);
});

function message(from: string, id: string): string {
  return (
    `From: <${from}>\r\nTo: <list@dest.example>\r\nSubject: ${id}\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n` +
    `Message-ID: <${id}@shop.example>\r\n\r\nbody ${id}\r\n`
  );
}

async function submit(pod: RunningPod, from: string, to: string, id: string) {
  return sendMessage(pod.ports.smtp ?? 25, { from, to: [to], raw: message(from, id) }, { host: pod.ip });
}

async function metric(pod: RunningPod, name: string, labels: Record<string, string>): Promise<number> {
  return metricValue(await (await fetch(`http://${pod.ip}:${pod.ports.http}/metrics`)).text(), name, labels);
}

async function suppressions(pod: RunningPod, address: string) {
  const token = (await readFile(path.join(pod.configDir, 'admin-tokens/read'), 'utf8')).trim();
  const res = await fetch(`http://${pod.ip}:${pod.ports.http}/api/suppressions?address=${address}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return ((await res.json()) as { entries: { scope: string; reason: string; source: string }[] }).entries;
}

test('bounces after delivery reach the return-path listener, suppress on every replica, and suspend the domain', async () => {
  const recipients = ['ann', 'gone1', 'bob', 'cy', 'gone2', 'dee'].map((l) => `${l}@dest.example`);
  for (const [i, to] of recipients.entries()) {
    const r = await submit(sender, 'news@shop.example', to, `shop-${i}`);
    assert.ok(r.ok, r.response);
  }
  // Postfix accepted all six (the relay counts them delivered); its DSNs for the two gone
  // mailboxes came back to the other pod's return-path listener.
  const labels = { sending_domain: 'shop.example', kind: 'hard-bounce', category: 'bad-mailbox' };
  await waitFor(
    async () => (await metric(receiver, 'mailfleet_relay_feedback_reports_total', labels)) === 2,
    60_000,
    `two DSNs counted by the return-path listener\n${postfix?.log().slice(-2000)}`,
  );
  assert.equal(
    await metric(sender, 'mailfleet_relay_recipients_delivered_total', { sending_domain: 'shop.example' }),
    6,
  );
  for (const address of ['gone1@dest.example', 'gone2@dest.example'])
    for (const pod of [sender, receiver])
      assert.deepEqual(
        (
          await eventually(
            `${address} suppressed on ${pod.pod.metadata.name}`,
            async () => {
              const entries = await suppressions(pod, address);
              return entries.length > 0 ? entries : undefined;
            },
            30_000,
          )
        ).map((e) => [e.scope, e.reason, e.source]),
        [['*', 'hard-bounce', 'dsn']],
      );
  // The pod that sent the mail learned it through the store: the next message to it is refused.
  const again = await submit(sender, 'news@shop.example', 'gone1@dest.example', 'shop-again');
  assert.equal(again.ok, false);
  assert.match(again.response, /^550 5\.1\.1 Recipient suppressed/);

  const sd = await eventually('the operator suspends shop', async () => {
    const o = await json(['-n', NS, 'get', 'sd/shop']);
    return condition(o, 'Suspended')?.status === 'True' ? o : undefined;
  });
  assert.equal(sd.spec.suspend, true, 'spec.suspend written through the API server');
  const suspended = condition(sd, 'Suspended');
  assert.equal(suspended?.reason, 'BounceRateExceeded');
  assert.match(
    suspended?.message ?? '',
    /bounce rate 33\.33% \(2 of 6 recipients.*2 of them bounced after delivery/,
  );
  assert.equal(sd.status.asyncBounces, 2);
  assert.equal(sd.status.bounceRate, '0.3333');
  assert.equal(sd.status.complaintRate, '0.0000');
  const events = await json(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=shop']);
  assert.ok(events.items.some((e: { reason: string }) => e.reason === 'BounceRateExceeded'));
  // The MX to publish for the return path, through the API server.
  assert.deepEqual(sd.status.returnPathMX, {
    name: 'bounces.shop.example',
    type: 'MX',
    value: '10 mx-in.shop.example.',
  });
  assert.equal(condition(sd, 'ReturnPathReady')?.status, 'True');
  // news.example had no mail yet: untouched.
  const news = await json(['-n', NS, 'get', 'sd/news']);
  assert.notEqual(news.spec.suspend, true);
});

test('a feedback-loop complaint reaches the return-path listener and suspends the domain for its complaint rate', async () => {
  const recipients = ['eve', 'fay', 'gus', 'hal'].map((l) => `${l}@dest.example`);
  for (const [i, to] of recipients.entries()) {
    const r = await submit(sender, 'letter@news.example', to, `news-${i}`);
    assert.ok(r.ok, r.response);
  }
  const copies = () => upstream?.received.filter((m) => m.from.endsWith('@fbl.news.example')) ?? [];
  await waitFor(() => copies().length === 4, 60_000, 'four copies through Postfix');
  const complained = copies().find((m) => m.to[0] === 'fay@dest.example');
  assert.ok(complained, 'the copy to fay');
  // The mailbox provider's feedback loop: a real ARF report (sisimai's corpus) to the VERP sender.
  const arf = readFileSync(path.join(import.meta.dirname, '../fixtures/feedback/sisimai/arf-02.eml'));
  const r = await sendMessage(
    receiver.ports.returnPath ?? 0,
    { from: 'feedback@fbl.provider.example', to: [complained.from], raw: arf },
    { host: receiver.ip },
  );
  assert.ok(r.ok, r.response);

  const sd = await eventually('the operator suspends news', async () => {
    const o = await json(['-n', NS, 'get', 'sd/news']);
    return condition(o, 'Suspended')?.status === 'True' ? o : undefined;
  });
  assert.equal(sd.spec.suspend, true);
  const suspended = condition(sd, 'Suspended');
  assert.equal(suspended?.reason, 'ComplaintRateExceeded');
  assert.match(suspended?.message ?? '', /complaint rate 25\.00% \(1 of 4 recipients/);
  assert.equal(sd.status.complaintRate, '0.2500');
  // The complaint suppressed fay for news.example only, on both pods.
  for (const pod of [sender, receiver])
    assert.deepEqual(
      (
        await eventually(
          `fay suppressed on ${pod.pod.metadata.name}`,
          async () => {
            const entries = await suppressions(pod, 'fay@dest.example');
            return entries.length > 0 ? entries : undefined;
          },
          30_000,
        )
      ).map((e) => [e.scope, e.reason, e.source]),
      [['news.example', 'complaint', 'arf']],
    );
  // The operator's own per-domain complaint-rate gauge.
  assert.ok(operator);
  const metrics = await (await fetch(operator.metricsUrl)).text();
  assert.equal(
    metricValue(metrics, 'mailfleet_operator_sending_domain_complaint_rate', {
      namespace: NS,
      pool: 'fb',
      sending_domain: 'news.example',
    }),
    0.25,
  );
});

test('the pool reports whether its relays reach the shared store: Connected, StoreUnreachable naming both relays while it is down (mail still accepted), Connected again', async () => {
  const available = (want: string) =>
    eventually(`SharedStateAvailable ${want}`, async () => {
      const c = condition(await json(['-n', NS, 'get', 'rp/fb']), 'SharedStateAvailable');
      return c?.status === want ? c : undefined;
    });
  assert.equal((await available('True')).reason, 'Connected');
  assert.ok(redis);
  await redis.stop();
  const down = await available('False');
  assert.equal(down.reason, 'StoreUnreachable');
  for (const pod of [sender, receiver]) assert.match(down.message, new RegExp(pod.pod.metadata.name));
  // Local decisions: a message is still accepted with the store down.
  const r = await submit(sender, 'news@shop.example', 'ivy@dest.example', 'store-down');
  assert.ok(r.ok, r.response);
  await redis.restart();
  assert.equal((await available('True')).reason, 'Connected');
});
