// The bounce-rate autopilot end to end: two real relays (standing in for the pool's two kwok pods
// through --relay-metrics-targets) relay to an upstream that bounces half the recipients; the
// operator scrapes them, suspends the SendingDomain, renders it suspended, records an Event, and
// resumes when the user sets spec.suspend back to false.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually, startCluster, startOperator, writeCount } from '../helpers/operator/harness.ts';
import type { OperatorProcess } from '../helpers/operator/harness.ts';
import {
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  tempDir,
} from '../helpers/relay/peers.ts';
import type { RelayProcess, ScriptedUpstream } from '../helpers/relay/peers.ts';

const NS = 'mail';
let cp: ControlPlane;
let operator: OperatorProcess | undefined;
/** A second operator, started after the first: a standby that watches and scrapes all along. */
let standby: OperatorProcess | undefined;
let upstream: ScriptedUpstream | undefined;
const relays: RelayProcess[] = [];
const dirs: string[] = [];
const k = (args: string[]) => cp.kubectl(args);
const json = async (args: string[]) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl JSON of many kinds
  JSON.parse((await k([...args, '-o', 'json'])).stdout) as Record<string, any>;
const apply = (object: unknown) => cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(object) });
const condition = (o: { status?: { conditions?: { type: string }[] } }, type: string) =>
  o.status?.conditions?.find((c) => c.type === type) as
    { status: string; reason: string; message: string } | undefined;

before(async () => {
  cp = await startCluster();
  const dir = await tempDir('bounce-op');
  dirs.push(dir);
  const targets = path.join(dir, 'targets.json');
  await writeFile(targets, '{}');
  await k(['create', 'namespace', NS]);
  operator = await startOperator(cp, 'bounce', [
    '--scrape-interval',
    '1',
    '--relay-metrics-targets',
    targets,
  ]);
  await apply({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name: 'bulk', namespace: NS },
    spec: { replicas: 2 },
  });
  await apply({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'SendingDomain',
    metadata: { name: 'bounce-example', namespace: NS },
    spec: {
      domain: 'bounce.example',
      poolRef: { name: 'bulk' },
      dkim: { selector: 's1', algorithm: 'ed25519-sha256' },
      // minMessages is every recipient the test sends: no suspension (and 550s) while it still sends.
      bouncePolicy: { maxBounceRate: 0.1, minMessages: 40, window: '10m', action: 'Suspend' },
    },
  });
  await k(['-n', NS, 'wait', '--for=condition=Ready', 'rp/bulk', '--timeout=120s']);
  standby = await startOperator(cp, 'bounce-standby', [
    '--scrape-interval',
    '1',
    '--relay-metrics-targets',
    targets,
  ]);

  upstream = await startScripted();
  // Every recipient whose local part starts with "bad" is refused for good.
  upstream.onRcpt = (to) => (to.startsWith('bad') ? { code: 550, message: '5.1.1 no such user' } : undefined);
  for (let i = 0; i < 2; i++) {
    const spool = await tempDir(`bounce-spool-${i}`);
    dirs.push(spool);
    relays.push(
      await startRelay(relayConfig(spool, upstream.port, { sendingDomains: [{ domain: 'bounce.example' }] })),
    );
  }
  const pods = await json(['-n', NS, 'get', 'pods', '-l', 'mailfleet.dev/pool=bulk']);
  assert.equal(pods.items.length, 2);
  const mapping: Record<string, string> = {};
  pods.items.forEach((pod: { metadata: { name: string } }, i: number) => {
    mapping[`${NS}/${pod.metadata.name}`] = `http://127.0.0.1:${relays[i]?.ports.http}/metrics`;
  });
  await writeFile(targets, JSON.stringify(mapping));
});

after(async () => {
  await operator?.stop();
  await standby?.stop();
  for (const relay of relays) await relay.stop();
  await upstream?.stop();
  await cp?.stop();
  for (const dir of dirs) await removeDir(dir);
});

test('a bounce rate over the policy suspends the domain: status, rendered config, Event, metrics', async () => {
  // 10 messages per relay, each to one good and one bad recipient: 50% of recipients bounce.
  for (const [r, relay] of relays.entries()) {
    for (let i = 0; i < 10; i++) {
      const sent = await sendMessage(relay.ports.smtp, {
        from: 'news@bounce.example',
        to: [`good${i}@dest.example`, `bad${i}@dest.example`],
        raw: rawMessage(`m${r}-${i}`),
      });
      assert.ok(sent.ok, sent.response);
    }
  }
  const sd = await eventually('Suspended=True', async () => {
    const o = await json(['-n', NS, 'get', 'sd/bounce-example']);
    return condition(o, 'Suspended')?.status === 'True' ? o : undefined;
  });
  const suspended = condition(sd, 'Suspended');
  assert.equal(suspended?.reason, 'BounceRateExceeded');
  assert.match(suspended?.message ?? '', /bounce rate 50\.00% \(20 of 40 recipients in the last 10m\)/);
  assert.equal(sd.spec.suspend, true);
  assert.equal(sd.status.bounceRate, '0.5000');

  const rendered = await eventually('config renders the domain suspended', async () => {
    const cm = await json(['-n', NS, 'get', 'configmap', 'bulk-config']);
    const config = parse(cm.data['relay.yaml']) as {
      sendingDomains: { domain: string; suspended: boolean }[];
    };
    const entry = config.sendingDomains.find((d) => d.domain === 'bounce.example');
    return entry?.suspended ? entry : undefined;
  });
  assert.equal(rendered.suspended, true);

  const events = await json([
    '-n',
    NS,
    'get',
    'events',
    '--field-selector',
    'involvedObject.name=bounce-example',
  ]);
  const warning = events.items.find((e: { reason: string }) => e.reason === 'BounceRateExceeded');
  assert.ok(warning, 'a BounceRateExceeded Event');
  assert.equal(warning.type, 'Warning');
  assert.match(warning.message, /50\.00%/);

  assert.ok(operator);
  const metrics = await (await fetch(operator.metricsUrl)).text();
  const labels = 'namespace="mail",pool="bulk",sending_domain="bounce.example"';
  assert.match(metrics, new RegExp(`mailfleet_operator_sending_domain_suspended\\{${labels}\\} 1`));
  assert.match(metrics, new RegExp(`mailfleet_operator_sending_domain_bounce_rate\\{${labels}\\} 0.5`));
  assert.match(metrics, new RegExp(`mailfleet_operator_sending_domain_max_bounce_rate\\{${labels}\\} 0.1`));
  assert.match(
    metrics,
    new RegExp(`mailfleet_operator_sending_domain_condition\\{${labels},type="Suspended",status="True"\\} 1`),
  );
});

test('spec.suspend: false resumes; the cool-down keeps it from suspending again at once', async () => {
  await k(['-n', NS, 'patch', 'sd/bounce-example', '--type=merge', '-p', '{"spec":{"suspend":false}}']);
  const sd = await eventually('Suspended=False', async () => {
    const o = await json(['-n', NS, 'get', 'sd/bounce-example']);
    return condition(o, 'Suspended')?.status === 'False' ? o : undefined;
  });
  assert.equal(condition(sd, 'Degraded')?.reason, 'BounceRateExceeded');
  assert.match(condition(sd, 'Degraded')?.message ?? '', /not suspending again yet/);
  await eventually('annotation removed', async () => {
    const o = await json(['-n', NS, 'get', 'sd/bounce-example']);
    return o.metadata.annotations?.['mailfleet.dev/autosuspended'] === undefined;
  });
  await eventually('config renders the domain sending', async () => {
    const cm = await json(['-n', NS, 'get', 'configmap', 'bulk-config']);
    const config = parse(cm.data['relay.yaml']) as {
      sendingDomains: { domain: string; suspended: boolean }[];
    };
    return config.sendingDomains.find((d) => d.domain === 'bounce.example')?.suspended === false;
  });
  // Several scrape rounds later it is still resumed.
  await new Promise((r) => setTimeout(r, 4000));
  const later = await json(['-n', NS, 'get', 'sd/bounce-example']);
  assert.equal(later.spec.suspend, false);
  assert.equal(condition(later, 'Suspended')?.status, 'False');
});

test('a failover keeps the bounce window: the standby measured it all along, and wrote nothing meanwhile', async () => {
  assert.ok(operator && standby);
  const gauge = async (op: OperatorProcess) =>
    /mailfleet_operator_sending_domain_bounce_rate\{namespace="mail",pool="bulk",sending_domain="bounce.example"\} (\S+)/.exec(
      await (await fetch(op.metricsUrl)).text(),
    )?.[1];
  assert.equal(await writeCount(standby), 0, 'a standby writes nothing');
  assert.equal(await gauge(standby), undefined, 'a standby reconciles nothing');
  const scraped = /mailfleet_operator_relay_scrapes_total\{result="success"\} (\d+)/.exec(
    await (await fetch(standby.metricsUrl)).text(),
  );
  assert.ok(Number(scraped?.[1]) > 0, 'the standby scrapes the relays');
  // The leader dies without releasing its lease; the standby takes over when it expires.
  operator.process.kill('SIGKILL');
  await eventually('the standby leads', async () => standby?.logs.some((l) => l.includes('became leader')));
  // Its first reconciles measure the whole window, the 40 recipients sent before it led, rather
  // than starting an empty window at the failover.
  const rate = await eventually('the new leader reports the bounce rate', () => gauge(standby!));
  assert.equal(Number(rate), 0.5);
  const sd = await json(['-n', NS, 'get', 'sd/bounce-example']);
  assert.equal(sd.status.bounceRateMessages, 40);
  assert.equal(sd.status.bounceRate, '0.5000');
});
