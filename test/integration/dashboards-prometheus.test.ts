// The chart's dashboards and alerts against a real Prometheus (Debian's /usr/bin/prometheus on
// loopback) scraping two real relays and the operator while test mail flows:
//
// - the operator runs as a local process with a kubeconfig for the chart's own ServiceAccount,
//   bound to the chart's own RBAC and started with the chart Deployment's own args, against the
//   real control plane; it reconciles the samples (crds/samples) to Ready;
// - two real relays stand in for the two kwok pods of the sample pool `mail/transactional`: the
//   operator's bounce autopilot scrapes them through --relay-metrics-targets, Prometheus scrapes
//   them with the `pool`, `namespace` and `pod` labels the ServiceMonitor relabelling would set;
// - a scripted upstream delivers, bounces (550) and defers (451) recipients by local part;
// - example.com tracks opens and clicks: a real `mailfleet tracker` with the test's key stands in
//   for the pool's tracker pods (scraped with the labels of the tracker's ServiceMonitor), and
//   readers, an image proxy among them, fetch pixels and follow links of each round's messages;
// - example.com has a return path: per relay and round, a real Postfix DSN and a real ARF report
//   come back to the relay's return-path listener, and a suppressed recipient is refused;
// - every panel query of every dashboard, with the template variables set to values that exist,
//   returns data; the bounce-rate alert fires once more recipients bounce than the policy allows
//   (rules rendered with every `for:` shortened to 2s: the shipped minutes cannot be waited for);
// - `promtool check metrics` on the operator's /metrics.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, cacheBinDir, startControlPlane } from '../../dev/controlplane/cluster.ts';
import { freePort } from '../../dev/net.ts';
import type { ControlPlane } from '../../dev/controlplane/cluster.ts';
import { eventually } from '../helpers/operator/harness.ts';
import {
  CHART_DIR,
  expandVariables,
  loadAlertGroups,
  loadAlerts,
  loadDashboards,
  panelQueries,
} from '../helpers/prometheus/chart-files.ts';
import { podMetaLabels, relabel } from '../helpers/prometheus/relabel.ts';
import type { PodMeta, Relabeling } from '../helpers/prometheus/relabel.ts';
import { renderRules, startPrometheus } from '../helpers/prometheus/server.ts';
import type { Prometheus } from '../helpers/prometheus/server.ts';
import {
  TEST_CERT,
  TEST_KEY,
  rawMessage,
  relayConfig,
  removeDir,
  sendMessage,
  startRelay,
  startScripted,
  tempDir,
} from '../helpers/relay/peers.ts';
import type { RelayProcess, ScriptedUpstream } from '../helpers/relay/peers.ts';
import { startTracker, type TrackerProcess } from '../helpers/tracking/tracker.ts';
import { clickUrl, openUrl } from '../../relay/src/tracking/links.ts';

const NS = 'mail';
const POOL = 'transactional';
const DOMAIN = 'example.com';
const RELEASE_NS = 'mailfleet-system';
/** The template variables' values: the sample pool and its first sending domain. */
const VARIABLES = { namespace: NS, pool: POOL, domain: DOMAIN };
const BOUNCE_ALERT = 'MailfleetBounceRateOverPolicy';
const COMPLAINT_ALERT = 'MailfleetComplaintRateOverPolicy';
const ALERT_FOR = '2s';

let cp: ControlPlane;
let operator: ChildProcess | undefined;
let operatorUrl = '';
const operatorLogs: string[] = [];
let upstream: ScriptedUpstream | undefined;
let prometheus: Prometheus | undefined;
const relays: RelayProcess[] = [];
let tracker: TrackerProcess | undefined;
/** The tracker's target labels: its kwok pod's meta labels through the tracker ServiceMonitor's. */
let trackerLabels: Record<string, string> = {};
const TRACKING_KEY = 'dashboards-tracking-key-0123456789';
/** The target labels of each relay: its kwok pod's meta labels through the ServiceMonitor's relabelings. */
const relayLabels: Record<string, string>[] = [];
const dirs: string[] = [];
const k = (args: string[]) => cp.kubectl(args);
const apply = (object: unknown) => cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(object) });

type Manifest = { kind: string; metadata: { name: string }; spec?: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The chart's ServiceAccount, RBAC and Deployment, rendered by the real helm. */
function renderChart(): Manifest[] {
  const helm = cp.binaries.helm ?? path.join(cacheBinDir(), 'helm');
  const result = spawnSync(
    helm,
    [
      'template',
      'fleet',
      CHART_DIR,
      '--namespace',
      RELEASE_NS,
      '--show-only',
      'templates/serviceaccount.yaml',
      '--show-only',
      'templates/rbac.yaml',
      '--show-only',
      'templates/deployment.yaml',
    ],
    {
      encoding: 'utf8',
      env: {
        ...process.env,
        HELM_CACHE_HOME: '/tmp/mailfleet-helm/cache',
        HELM_CONFIG_HOME: '/tmp/mailfleet-helm/config',
        HELM_DATA_HOME: '/tmp/mailfleet-helm/data',
      },
    },
  );
  assert.equal(result.status, 0, result.stderr);
  return parseAllDocuments(result.stdout)
    .map((d) => d.toJS() as Manifest)
    .filter((m) => m?.kind);
}

/** Sends one message through a relay and asserts the relay's answer. */
async function send(
  relay: RelayProcess,
  id: string,
  from: string,
  to: string[],
  options: Record<string, unknown> = {},
  expectOk = true,
) {
  const result = await sendMessage(relay.ports.smtp, { from, to, raw: rawMessage(id) }, options);
  assert.equal(result.ok, expectOk, `${id}: ${result.response}`);
}

const RETURN_PATH = 'bounces.example.com';
const TRACKING_HOST = 't.example.com';
const FEEDBACK_FIXTURES = path.join(REPO_ROOT, 'test/fixtures/feedback');

/**
 * The feedback loop's series: a message to two recipients the upstream accepts; a real Postfix
 * DSN comes back for one (an async hard bounce, which suppresses it), a real ARF report for the
 * other (a complaint); the next message to the bounced one is refused at RCPT.
 */
async function feedback(relay: RelayProcess, tag: string) {
  const returned = `returned-${tag}@dest.example`;
  const complainer = `complainer-${tag}@dest.example`;
  await send(relay, `fb-${tag}`, `app@${DOMAIN}`, [returned, complainer]);
  const verp = (to: string) =>
    eventually(`the copy to ${to}`, async () => upstream?.received.find((m) => m.to[0] === to)?.from, 30_000);
  for (const [to, file] of [
    [returned, 'postfix-3.7-user-unknown.eml'],
    [complainer, 'sisimai/arf-02.eml'],
  ] as const) {
    const report = await sendMessage(relay.ports.returnPath ?? 0, {
      from: '',
      to: [await verp(to)],
      raw: await readFile(path.join(FEEDBACK_FIXTURES, file)),
    });
    assert.ok(report.ok, `${file}: ${report.response}`);
  }
  await send(relay, `fb-again-${tag}`, `app@${DOMAIN}`, [returned], {}, false);
}

const STARTTLS = { ignoreTLS: false, requireTLS: true, tls: { rejectUnauthorized: false } };

before(async () => {
  cp = await startControlPlane({});
  // The chart's CRDs, ServiceAccount and RBAC (what `helm install` creates, minus the pods).
  await k(['apply', '-f', path.join(CHART_DIR, 'crds')]);
  await k(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  // The Prometheus Operator's CRDs (stand-ins), so the operator creates the sample pool's ServiceMonitor.
  await k(['apply', '-f', path.join(REPO_ROOT, 'test/helpers/prometheus/monitoring-crds.yaml')]);
  await k(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await k(['create', 'namespace', RELEASE_NS]);
  const chart = renderChart();
  for (const m of chart.filter((m) => m.kind !== 'Deployment')) await apply(m);
  const serviceAccount = chart.find((m) => m.kind === 'ServiceAccount');
  const deployment = chart.find((m) => m.kind === 'Deployment');
  assert.ok(serviceAccount && deployment);

  // The samples, as operator-pool.test.ts applies them: no persistent queue (kwok has no storage).
  await k(['apply', '-f', path.join(REPO_ROOT, 'crds/samples/namespace.yaml')]);
  const pool = JSON.parse(
    (
      await k([
        'create',
        '--dry-run=client',
        '-o',
        'json',
        '-f',
        path.join(REPO_ROOT, 'crds/samples/relaypool.yaml'),
      ])
    ).stdout,
  ) as Manifest;
  delete pool.spec?.queue;
  await apply(pool);
  await k([
    'apply',
    '-f',
    path.join(REPO_ROOT, 'crds/samples/sendingdomains.yaml'),
    '-f',
    path.join(REPO_ROOT, 'crds/samples/ratelimits.yaml'),
  ]);
  // example.com, the domain the variables select, gets the return path too (its complaint rate)
  // and tracking (the pool's tracker pods, whose opens and clicks the rates panel reads).
  await k([
    '-n',
    NS,
    'patch',
    'sd/example-com',
    '--type=merge',
    '-p',
    JSON.stringify({
      spec: { returnPath: RETURN_PATH, tracking: { opens: true, clicks: true, host: TRACKING_HOST } },
    }),
  ]);
  // A misconfigured pool (memory request over its limit): the API server refuses its Deployment,
  // so the operator counts reconcile errors (the "Errors by code" panel has something to show).
  await apply({
    apiVersion: 'mailfleet.dev/v1alpha1',
    kind: 'RelayPool',
    metadata: { name: 'misconfigured', namespace: NS },
    spec: { replicas: 1, resources: { requests: { memory: '1Gi' }, limits: { memory: '512Mi' } } },
  });

  // The upstream: "bad*" bounce (550), "later*" are deferred (451), everyone else is delivered.
  upstream = await startScripted();
  upstream.onRcpt = (to) =>
    to.startsWith('bad')
      ? { code: 550, message: '5.1.1 no such user' }
      : to.startsWith('later')
        ? { code: 451, message: '4.2.0 try again later' }
        : undefined;
  // Two relays of the pool. The first gives up on a message after 3 s (deferred recipients expire
  // there), the second keeps trying (its queue keeps deferred jobs). Both sign VERP with the pool's key.
  const keyDir = await tempDir('dash-verp');
  dirs.push(keyDir);
  const keyFile = path.join(keyDir, 'verp.key');
  await writeFile(keyFile, 'dashboards-verp-key-0123456789\n');
  for (const [i, lifetime] of ['3s', '1h'].entries()) {
    const spool = await tempDir(`dash-spool-${i}`);
    dirs.push(spool);
    relays.push(
      await startRelay(
        relayConfig(spool, upstream.port, {
          sendingDomains: [
            { domain: 'example.com', returnPath: RETURN_PATH },
            { domain: 'news.example.com' },
          ],
          returnPath: { keyFile, listener: { host: '127.0.0.1', port: 0 } },
          tls: { certFile: TEST_CERT, keyFile: TEST_KEY },
          retry: { firstRetry: '1s', maxBackoff: '1s', maxQueueLifetime: lifetime },
        }),
      ),
    );
  }

  // The operator: the chart Deployment's args, --http on loopback, the chart's ServiceAccount.
  const dir = await tempDir('dash-op');
  dirs.push(dir);
  const targets = path.join(dir, 'targets.json');
  await writeFile(targets, '{}');
  const kubeconfig = await cp.serviceAccountKubeconfig(RELEASE_NS, serviceAccount.metadata.name, {
    path: path.join(dir, 'sa.kubeconfig'),
  });
  const container = deployment.spec?.template.spec.containers[0] as { args: string[] };
  const port = await freePort();
  operatorUrl = `http://127.0.0.1:${port}/metrics`;
  const args = container.args.map((a) => (a.startsWith('--http=') ? `--http=127.0.0.1:${port}` : a));
  assert.ok(args.includes(`--http=127.0.0.1:${port}`), `chart args: ${container.args.join(' ')}`);
  operator = spawn(
    process.execPath,
    [
      path.join(REPO_ROOT, 'bin/mailfleet.ts'),
      ...args,
      '--kubeconfig',
      kubeconfig,
      '--identity',
      'fleet-mailfleet-local',
      '--scrape-interval',
      '1',
      '--relay-metrics-targets',
      targets,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POD_NAMESPACE: RELEASE_NS } },
  );
  operator.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    operatorLogs.push(...chunk.split('\n').filter(Boolean));
    if (process.env.OPERATOR_LOGS) process.stderr.write(chunk);
  });

  await k(['-n', NS, 'wait', '--for=condition=Ready', `rp/${POOL}`, '--timeout=120s']);
  const podsOf = async (app: string) =>
    JSON.parse(
      (
        await k([
          '-n',
          NS,
          'get',
          'pods',
          '-l',
          `mailfleet.dev/pool=${POOL},app.kubernetes.io/name=${app}`,
          '-o',
          'json',
        ])
      ).stdout,
    ) as { items: PodMeta[] };
  const pods = await podsOf('mailfleet-relay');
  assert.equal(pods.items.length, relays.length);
  // The relabelings of the ServiceMonitor the operator made for the pool, applied to the pods as
  // Prometheus would (the Prometheus Operator also sets `pod` on every target).
  const monitor = await eventually('the ServiceMonitor of the pool', async () => {
    const r = await cp.kubectl(['-n', NS, 'get', 'servicemonitor', POOL, '-o', 'json'], { allowFail: true });
    return r.code === 0
      ? (JSON.parse(r.stdout) as { spec: { endpoints: { relabelings?: Relabeling[] }[] } })
      : undefined;
  });
  const relabelings = monitor.spec.endpoints[0]?.relabelings ?? [];
  // The tracker: one process for the pool's tracker pods, labelled as its ServiceMonitor says.
  const trackingKeyFile = path.join(dir, 'tracking.key');
  await writeFile(trackingKeyFile, TRACKING_KEY);
  tracker = await startTracker(trackingKeyFile);
  const trackerPods = await eventually('the tracker pods', async () => {
    const list = await podsOf('mailfleet-tracker');
    return list.items.length > 0 ? list.items : undefined;
  });
  const trackerMonitor = await eventually('the ServiceMonitor of the tracker', async () => {
    const r = await cp.kubectl(['-n', NS, 'get', 'servicemonitor', `${POOL}-tracker`, '-o', 'json'], {
      allowFail: true,
    });
    return r.code === 0
      ? (JSON.parse(r.stdout) as { spec: { endpoints: { relabelings?: Relabeling[] }[] } })
      : undefined;
  });
  trackerLabels = relabel(
    { ...podMetaLabels(trackerPods[0]!), pod: trackerPods[0]!.metadata.name },
    trackerMonitor.spec.endpoints[0]?.relabelings ?? [],
  );
  assert.deepEqual(
    [trackerLabels.namespace, trackerLabels.tracker_pool, trackerLabels.pool],
    [NS, POOL, undefined],
  );
  const mapping: Record<string, string> = {};
  for (const [i, pod] of pods.items.entries()) {
    relayLabels.push(relabel({ ...podMetaLabels(pod), pod: pod.metadata.name }, relabelings));
    mapping[`${NS}/${pod.metadata.name}`] = `http://127.0.0.1:${relays[i]?.ports.http}/metrics`;
  }
  assert.deepEqual(
    relayLabels.map((l) => [l.namespace, l.pool]),
    relays.map(() => [NS, POOL]),
  );
  // The operator reads the tracker pods' opens and clicks too (status.rates).
  for (const pod of trackerPods) mapping[`${NS}/${pod.metadata.name}`] = tracker.metrics;
  await writeFile(targets, JSON.stringify(mapping));

  // A kube-apiserver restart: the operator's watches fail and restart ("Watch restarts" panel).
  if (cp.capabilities.restart) {
    await cp.stopApiServer();
    await new Promise((r) => setTimeout(r, 1000));
    await cp.startApiServer();
  }

  // Prometheus, with the labels the ServiceMonitor relabelling gives relay targets
  // (docs/observability.md); the operator is scraped with honor_labels and carries no pool.
  prometheus = await startPrometheus({
    rules: renderRules(ALERT_FOR),
    jobs: [
      {
        job: 'mailfleet-relays',
        targets: relays.map((relay, i) => ({
          address: `127.0.0.1:${relay.ports.http}`,
          labels: relayLabels[i] ?? {},
        })),
      },
      {
        job: 'mailfleet-trackers',
        targets: [{ address: `127.0.0.1:${tracker.metricsPort}`, labels: trackerLabels }],
      },
      {
        job: 'mailfleet-operator',
        honorLabels: true,
        targets: [
          { address: `127.0.0.1:${port}`, labels: { namespace: RELEASE_NS, pod: 'fleet-mailfleet-local' } },
        ],
      },
    ],
  });
  await eventually('Prometheus to scrape every target', async () => {
    const active = await prometheus!.targets();
    return active.length === 4 && active.every((t) => t.health === 'up') ? true : undefined;
  });

  // Mail, once Prometheus watches, in two rounds: the first creates every series (a counter's
  // first sample is its baseline, so rate() only sees what happens after it), the second makes the
  // rates and histograms move. Per relay and round: messages to delivered recipients, a bounce,
  // deferred recipients, STARTTLS sessions, a newsletter, and a sender domain the relay does not
  // send for (refused: an SMTP rejection).
  const round = async (name: string, messages: number) => {
    for (const [r, relay] of relays.entries()) {
      for (let i = 0; i < messages; i++) {
        const to = [0, 1, 2, 3].map((j) => `good${i}-${j}@${j % 2 ? 'dest.example' : 'other.example'}`);
        if (i === 0) to.push(`bad-${name}${r}@dest.example`);
        if (i < 2) to.push(`later-${name}${r}-${i}@dest.example`);
        await send(relay, `${name}-${r}-${i}`, `app@${DOMAIN}`, to, i % 4 === 3 ? STARTTLS : {});
      }
      await send(relay, `${name}-news-${r}`, 'news@news.example.com', ['reader@dest.example']);
      await send(relay, `${name}-stranger-${r}`, 'someone@stranger.example', ['x@dest.example'], {}, false);
      await feedback(relay, `${name}${r}`);
    }
    await readers(name);
  };
  // Touching the pool makes the operator reconcile while Prometheus watches.
  const touch = (n: number) =>
    k(['-n', NS, 'annotate', '--overwrite', `rp/${POOL}`, `test.mailfleet.dev/touch=${n}`]);
  await round('first', 4);
  await eventually('Prometheus to scrape the first round (expiries included)', async () => {
    const expired = await prometheus!.query(`mailfleet_relay_recipients_expired_total{pool="${POOL}"}`);
    const bounced = await prometheus!.query(
      `count by (pod) (mailfleet_relay_recipients_bounced_total{pool="${POOL}"})`,
    );
    return expired.length > 0 && bounced.length === relays.length ? true : undefined;
  });
  await touch(1);
  await round('second', 10);
  await new Promise((r) => setTimeout(r, 1500));
  await touch(2);
});

/**
 * Readers of a round's example.com mail: three open it, one through Gmail's image proxy (a machine
 * open, left out of the rates), one follows a link.
 */
async function readers(round: string) {
  const key = Buffer.from(TRACKING_KEY);
  const at = (url: string) => tracker!.base + url.slice(`https://${TRACKING_HOST}`.length);
  const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' };
  for (const i of [0, 1, 2]) {
    const r = await fetch(at(openUrl(key, TRACKING_HOST, DOMAIN, `${round}-${i}@example.com`)), {
      headers: browser,
    });
    assert.equal(r.status, 200);
  }
  await fetch(at(openUrl(key, TRACKING_HOST, DOMAIN, `${round}-3@example.com`)), {
    headers: { 'user-agent': 'Mozilla/5.0 (via ggpht.com GoogleImageProxy)' },
  });
  const click = await fetch(
    at(clickUrl(key, TRACKING_HOST, DOMAIN, `${round}-0@example.com`, 'https://example.com/a')),
    {
      headers: browser,
      redirect: 'manual',
    },
  );
  assert.equal(click.status, 302);
}

after(async () => {
  if (operator && operator.exitCode === null && operator.signalCode === null) {
    const exited = new Promise((r) => operator?.once('exit', r));
    operator.kill('SIGTERM');
    await exited;
  }
  await prometheus?.stop();
  for (const relay of relays) await relay.stop();
  await tracker?.stop();
  await upstream?.stop();
  await cp?.stop();
  for (const dir of dirs) await removeDir(dir);
});

test("the operator, with the chart's ServiceAccount and RBAC, reconciles the samples to Ready", async () => {
  // rp/transactional was waited for in before(); the SendingDomains follow.
  await k([
    '-n',
    NS,
    'wait',
    '--for=condition=Ready',
    'sd/example-com',
    'sd/news-example-com',
    '--timeout=60s',
  ]);
  const whoami = await k([
    'auth',
    'can-i',
    '--list',
    '--as',
    `system:serviceaccount:${RELEASE_NS}:fleet-mailfleet`,
  ]);
  assert.match(whoami.stdout, /relaypools\.mailfleet\.dev/);
});

test('every query of every dashboard panel returns data from the real Prometheus', async () => {
  assert.ok(prometheus);
  const prom = prometheus;
  // The variables' own queries offer the values used below.
  for (const [file, dashboard] of loadDashboards()) {
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const query = (variable.query as { query?: string } | string | undefined) ?? '';
      const text = typeof query === 'string' ? query : (query.query ?? '');
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(text);
      assert.ok(m, `${file} $${variable.name}: ${text}`);
      const [, selector = '', label = ''] = m;
      const wanted = VARIABLES[variable.name as keyof typeof VARIABLES];
      await eventually(
        `${file} $${variable.name} offers ${wanted}`,
        async () => {
          const values = (
            await prom.query(`group by (${label}) (${expandVariables(selector, VARIABLES)})`)
          ).map((s) => s.metric[label]);
          return values.includes(wanted) ? true : undefined;
        },
        30_000,
      );
    }
  }

  const queries = [...loadDashboards()].flatMap(([file, dashboard]) => panelQueries(file, dashboard));
  // Every `expr` anywhere in the dashboard JSON is a panel query read here (none hides elsewhere).
  const exprCount = (node: unknown): number =>
    Array.isArray(node)
      ? node.reduce((n: number, child) => n + exprCount(child), 0)
      : node && typeof node === 'object'
        ? Object.entries(node).reduce(
            (n, [key, child]) => n + (key === 'expr' && typeof child === 'string' ? 1 : exprCount(child)),
            0,
          )
        : 0;
  const total = [...loadDashboards().values()].reduce((n, dashboard) => n + exprCount(dashboard), 0);
  assert.equal(queries.length, total);
  const pending = new Map(
    queries.map((q) => [`${q.dashboard} "${q.panel}": ${expandVariables(q.expr, VARIABLES)}`, q]),
  );
  // Data means a sample with a number: a NaN (0/0, histogram_quantile of no observations) is
  // drawn as nothing by Grafana.
  const last = new Map<string, string>();
  const deadline = Date.now() + 60_000;
  while (pending.size > 0 && Date.now() < deadline) {
    for (const key of [...pending.keys()]) {
      const samples = await prom.query(key.slice(key.indexOf('": ') + 3));
      if (samples.some((s) => Number.isFinite(Number(s.value[1])))) pending.delete(key);
      else last.set(key, JSON.stringify(samples.map((s) => [s.metric, s.value[1]])));
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 1000));
  }
  const missing = [...pending.keys()].map((key) => `${key}\n  -> ${last.get(key) ?? '[]'}`);
  assert.deepEqual(missing, [], `panel queries without data:\n${missing.join('\n')}`);

  // The rates panel, side by side: three human opens per round and one click, some bounces.
  const rates = queries
    .filter((q) => q.panel === 'Open, click-through and bounce rate')
    .map((q) => expandVariables(q.expr, VARIABLES));
  assert.equal(rates.length, 3);
  const [openRate, clickThrough, bounceRate] = await Promise.all(
    rates.map(async (expr) => Number((await prom.query(expr))[0]?.value[1])),
  );
  assert.ok(
    openRate! > clickThrough! && clickThrough! > 0,
    `open ${openRate}, click-through ${clickThrough}`,
  );
  assert.ok(bounceRate! > 0 && bounceRate! <= 1, `bounce ${bounceRate}`);

  // The traffic so far stays under example.com's bouncePolicy.maxBounceRate (0.1).
  const active = (await prom.alerts()).filter((a) => a.labels.alertname === BOUNCE_ALERT);
  assert.deepEqual(active, [], 'no bounce-rate alert before the bounce rate is pushed');
});

test(`${BOUNCE_ALERT} fires once the bounce rate goes over the policy, ${COMPLAINT_ALERT} on the ARF reports (for: shortened to ${ALERT_FOR})`, async () => {
  assert.ok(prometheus);
  const prom = prometheus;
  assert.ok(loadAlerts().some((a) => a.alert === BOUNCE_ALERT));
  // Per relay, 10 messages each to one delivered and two bounced recipients: 2/3 bounce.
  for (const [r, relay] of relays.entries()) {
    for (let i = 0; i < 10; i++) {
      await send(relay, `push-${r}-${i}`, `app@${DOMAIN}`, [
        `fine${i}@dest.example`,
        `bad${i}a@dest.example`,
        `bad${i}b@dest.example`,
      ]);
    }
  }
  const firing = await eventually(
    `${BOUNCE_ALERT} firing`,
    async () =>
      (await prom.alerts()).find((a) => a.labels.alertname === BOUNCE_ALERT && a.state === 'firing'),
    60_000,
  );
  assert.equal(firing.labels.namespace, NS);
  assert.equal(firing.labels.pool, POOL);
  assert.equal(firing.labels.sending_domain, DOMAIN);
  assert.equal(firing.labels.severity, 'warning');
  assert.ok(Number(firing.value) > 0.1, `bounce rate ${firing.value}`);
  assert.match(firing.annotations.runbook_url ?? '', /runbooks\.md#mailfleetbouncerateoverpolicy$/);
  assert.match(firing.annotations.description ?? '', /in pool mail\/transactional bounced/);

  // example.com's ARF reports (one per relay and round) put it far over the default 0.3%.
  const complaints = await eventually(
    `${COMPLAINT_ALERT} firing`,
    async () =>
      (await prom.alerts()).find((a) => a.labels.alertname === COMPLAINT_ALERT && a.state === 'firing'),
    60_000,
  );
  assert.equal(complaints.labels.namespace, NS);
  assert.equal(complaints.labels.pool, POOL);
  assert.equal(complaints.labels.sending_domain, DOMAIN);
  assert.ok(Number(complaints.value) > 0.003, `complaint rate ${complaints.value}`);
  assert.match(complaints.annotations.runbook_url ?? '', /runbooks\.md#mailfleetcomplaintrateoverpolicy$/);

  // No false alarm from the healthy relays: of the relay group, only the bounce- and complaint-rate
  // alerts fire. A pending alert notifies no one: one scrape slower than the 1 s scrape_timeout on a
  // loaded machine makes MailfleetRelayDown pending for a moment; its `for:` is what keeps it quiet.
  const relayAlerts = new Set(
    loadAlertGroups()
      .find((g) => g.name === 'mailfleet-relay')
      ?.rules.map((r) => r.alert),
  );
  const others = (await prom.alerts()).filter(
    (a) =>
      relayAlerts.has(a.labels.alertname ?? '') &&
      a.labels.alertname !== BOUNCE_ALERT &&
      a.labels.alertname !== COMPLAINT_ALERT,
  );
  assert.deepEqual(
    others.filter((a) => a.state === 'firing').map((a) => `${a.labels.alertname} ${a.state}`),
    [],
    `pending, notifying no one: ${others.map((a) => a.labels.alertname).join() || 'none'}`,
  );
  // MailfleetRelayDown's selector, up{pool!=""}, takes the relays and leaves the operator out.
  const relayUp = await prom.query('up{pool!=""}');
  assert.deepEqual(relayUp.map((s) => s.metric.job).sort(), ['mailfleet-relays', 'mailfleet-relays']);
});

// prom-client's default Node.js gauges named *_total (as for the relay in chart-metrics-lint).
const PROM_CLIENT_FINDINGS = [
  'mailfleet_operator_nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'mailfleet_operator_nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'mailfleet_operator_nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
];

test('promtool check metrics: the operator exposition parses and its own metrics are lint-clean', async () => {
  const body = await (await fetch(operatorUrl)).text();
  assert.match(body, /^mailfleet_operator_sending_domain_max_bounce_rate\{/m);
  // example.com's complaints (one ARF report per relay and round) as the autopilot measured them.
  assert.match(
    body,
    /^mailfleet_operator_sending_domain_complaint_rate\{[^}]*sending_domain="example\.com"[^}]*\} 0\.\d*[1-9]/m,
  );
  const result = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  assert.ok(!result.error, `promtool: ${result.error?.message}`);
  assert.notEqual(result.status, 1, result.stderr);
  const findings = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
  assert.deepEqual(findings.sort(), [...PROM_CLIENT_FINDINGS].sort());
});
