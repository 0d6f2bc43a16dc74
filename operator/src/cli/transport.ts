// How `mailfleet queue` reaches a relay's management port. Three ways, one interface:
// - proxy: the Kubernetes API server's pod proxy (/api/v1/namespaces/NS/pods/POD:8080/proxy/...),
//   with the user's kubeconfig, so RBAC on pods/proxy decides; the relay token rides in
//   X-Mailfleet-Token because the API server removes the Authorization header it authenticated.
// - port-forward: `kubectl port-forward pod/POD :8080` (RBAC on pods/portforward), then plain
//   HTTP to the local end; not filtered by the pool's NetworkPolicy.
// - targets: a JSON file {"namespace/pod": "http://host:port"} (relays on loopback: tests, demos).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { KubeClient } from '../kube/client.ts';
import { HTTP_PORT } from '../desired/meta.ts';

export type RelayReply = { status: number; text: string };

export type RelayRequest = {
  namespace: string;
  pod: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Path and query on the relay, e.g. `/api/messages?limit=100`. */
  path: string;
  token: string;
  /** A request body (an import's lines), sent as text/plain. */
  body?: string;
};

export interface RelayTransport {
  request(r: RelayRequest): Promise<RelayReply>;
  close(): Promise<void>;
}

/** Pure: the API server path that proxies `path` to the pod's management port. */
export function podProxyPath(
  namespace: string,
  pod: string,
  path: string,
): { path: string; query: Record<string, string> } {
  const url = new URL(path, 'http://relay');
  const query = Object.fromEntries(url.searchParams);
  return {
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${HTTP_PORT}/proxy${url.pathname}`,
    query,
  };
}

export function podProxyTransport(client: KubeClient): RelayTransport {
  return {
    request: async (r) => {
      const target = podProxyPath(r.namespace, r.pod, r.path);
      return client.requestText(r.method, target.path, {
        verb: 'proxy',
        query: target.query,
        headers: { 'X-Mailfleet-Token': r.token },
        ...(r.body === undefined ? {} : { rawBody: r.body, contentType: 'text/plain' }),
      });
    },
    close: async () => undefined,
  };
}

async function fetchRelay(base: string, r: RelayRequest): Promise<RelayReply> {
  const res = await fetch(new URL(r.path, base), {
    method: r.method,
    headers: {
      authorization: `Bearer ${r.token}`,
      ...(r.body === undefined ? {} : { 'content-type': 'text/plain' }),
    },
    ...(r.body === undefined ? {} : { body: r.body }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, text: await res.text() };
}

export function targetsTransport(file: string): RelayTransport {
  const targets = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  return {
    request: (r) => {
      const base = targets[`${r.namespace}/${r.pod}`];
      if (!base) throw new Error(`${file} has no URL for ${r.namespace}/${r.pod}`);
      return fetchRelay(base, r);
    },
    close: async () => undefined,
  };
}

/** `kubectl port-forward` per pod, started on first use, stopped by close(). */
export function portForwardTransport(kubectlArgs: string[] = []): RelayTransport {
  const forwards = new Map<string, { proc: ChildProcess; base: Promise<string> }>();
  const open = (namespace: string, pod: string) => {
    const key = `${namespace}/${pod}`;
    const existing = forwards.get(key);
    if (existing) return existing.base;
    const proc = spawn(
      'kubectl',
      [...kubectlArgs, '-n', namespace, 'port-forward', `pod/${pod}`, `:${HTTP_PORT}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const base = new Promise<string>((resolve, reject) => {
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        // "Forwarding from 127.0.0.1:43127 -> 8080"
        const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output);
        if (match) resolve(`http://127.0.0.1:${match[1]}`);
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('error', reject);
      proc.once('exit', (code) =>
        reject(new Error(`kubectl port-forward ${key} exited (${code}): ${output.trim()}`)),
      );
    });
    forwards.set(key, { proc, base });
    return base;
  };
  return {
    request: async (r) => fetchRelay(await open(r.namespace, r.pod), r),
    close: async () => {
      for (const { proc } of forwards.values()) if (proc.exitCode === null) proc.kill('SIGTERM');
    },
  };
}
