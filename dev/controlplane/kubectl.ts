// kubectl with a given kubeconfig, failing with its message unless told not to.
import { exec } from './processes.ts';
import type { ExecResult, KubectlOptions } from './types.ts';

export async function runKubectl(
  bin: string | undefined,
  kubeconfig: string,
  args: string[],
  options: KubectlOptions = {},
): Promise<ExecResult> {
  const result = await exec(bin ?? 'kubectl', args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    input: options.input,
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  if (result.code !== 0 && !options.allowFail) {
    throw new Error(
      `kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
}
