// Integration harness: the control plane and operator processes of dev/operator.ts (`npm start`
// runs them too), and what only tests ask of an operator.
import type { OperatorProcess } from '../../../dev/operator.ts';

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
