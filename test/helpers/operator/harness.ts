// Integration harness: the control plane and operator processes of dev/operator.ts (`npm start`
// runs them too), and what only tests ask of an operator.
import { eventually, type OperatorProcess } from '../../../dev/operator.ts';

export { eventually, operatorKubeconfig, startCluster, startOperator } from '../../../dev/operator.ts';
export type { OperatorProcess } from '../../../dev/operator.ts';

/** Sum of the operator's write requests (everything but get/list/watch), leases excluded. */
export async function writeCount(op: OperatorProcess): Promise<number> {
  const text = await (await fetch(op.metricsUrl)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^mailfleet_operator_api_requests_total\{([^}]*)\} (\d+)/.exec(line);
    if (!m) continue;
    const labels = m[1] ?? '';
    if (/verb="(get|list|watch)"/.test(labels) || /resource="leases"/.test(labels)) continue;
    total += Number(m[2]);
  }
  return total;
}

/**
 * The operator's write count once it has settled: unchanged over `intervalMs` (a late write of an
 * earlier reconcile lands before it is taken, not in the window a test measures after it).
 */
export async function settledWriteCount(op: OperatorProcess, intervalMs = 3000): Promise<number> {
  let previous = -1;
  return eventually('writes to settle', async () => {
    const now = await writeCount(op);
    if (now === previous) return now;
    previous = now;
    await new Promise((r) => setTimeout(r, intervalMs));
    return undefined;
  });
}
