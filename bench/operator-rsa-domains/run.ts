// One pool with many RSA domains whose keys the operator generates (the default algorithm): the
// time until every domain is Ready, how the relay Secret is sharded under the API server's 1 MiB
// limit, and what the work did to the operator's event loop (its own nodejs_eventloop_lag metrics,
// sampled every second) and memory. Not a test: it asserts nothing.
//
// Usage: node bench/operator-rsa-domains/run.ts [--domains 2000]
import { parseArgs } from 'node:util';
import { startCluster, startOperator } from '../../test/helpers/operator/harness.ts';

const { values } = parseArgs({ options: { domains: { type: 'string', default: '2000' } } });
const DOMAINS = Number(values.domains);
const NS = 'bench';
const say = (text: string) => process.stdout.write(`${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const metric = (text: string, name: string) => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

const cp = await startCluster(1);
const operator = await startOperator(cp, 'bench-rsa', ['--scrape-interval', '0']);
try {
  await cp.kubectl(['create', 'namespace', NS]);
  const items = [
    {
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'RelayPool',
      metadata: { name: 'bulk', namespace: NS },
      spec: { replicas: 1 },
    },
    ...Array.from({ length: DOMAINS }, (_, i) => ({
      apiVersion: 'mailfleet.dev/v1alpha1',
      kind: 'SendingDomain',
      metadata: { name: `d${i}`, namespace: NS },
      spec: { domain: `d${i}.example`, poolRef: { name: 'bulk' } },
    })),
  ];
  const started = performance.now();
  await cp.kubectl(['apply', '--server-side', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  });
  say(
    `applied 1 pool and ${DOMAINS} rsa-sha256 domains in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  let maxLagMs = 0;
  let peakRssMiB = 0;
  let ready = 0;
  for (;;) {
    const text = await (await fetch(operator.metricsUrl)).text();
    maxLagMs = Math.max(maxLagMs, metric(text, 'mailfleet_operator_nodejs_eventloop_lag_max_seconds') * 1000);
    peakRssMiB = Math.max(
      peakRssMiB,
      metric(text, 'mailfleet_operator_process_resident_memory_bytes') / 2 ** 20,
    );
    const list = JSON.parse((await cp.kubectl(['-n', NS, 'get', 'sd', '-o', 'json'])).stdout) as {
      items: { status?: { conditions?: { type: string; status: string }[] } }[];
    };
    ready = list.items.filter((d) =>
      d.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    const seconds = (performance.now() - started) / 1000;
    if (ready === DOMAINS || seconds > 1800) break;
    if (Math.round(seconds) % 15 === 0) say(`  ${seconds.toFixed(0)} s: ${ready}/${DOMAINS} domains Ready`);
    await sleep(1000);
  }
  const seconds = (performance.now() - started) / 1000;
  const secrets = JSON.parse(
    (
      await cp.kubectl([
        '-n',
        NS,
        'get',
        'secrets',
        '-l',
        'app.kubernetes.io/component=relay-secrets',
        '-o',
        'json',
      ])
    ).stdout,
  ) as { items: { metadata: { name: string }; data: Record<string, string> }[] };
  say(`\n| domains | all Ready | relay Secret shards | largest shard | max event-loop lag | peak RSS |`);
  say(`|---|---|---|---|---|---|`);
  const sizes = secrets.items.map((s) =>
    Object.entries(s.data).reduce((n, [k, v]) => n + k.length + Buffer.from(v, 'base64').length, 0),
  );
  say(
    `| ${DOMAINS} | ${ready === DOMAINS ? `${seconds.toFixed(0)} s` : `not after ${seconds.toFixed(0)} s (${ready})`} | ${secrets.items.length} | ${(Math.max(...sizes) / 1024).toFixed(0)} KiB | ${maxLagMs.toFixed(0)} ms | ${peakRssMiB.toFixed(0)} MiB |`,
  );
} finally {
  await operator.stop();
  await cp.stop();
}
