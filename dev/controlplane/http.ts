// Calls to kube-apiserver over HTTPS with a client certificate or a bearer token, without kubectl
// (the control plane uses it before kubectl has a kubeconfig to read).
import https from 'node:https';

export interface TlsIdentity {
  ca: string;
  cert?: string;
  key?: string;
  token?: string;
}

export interface HttpResult {
  status: number;
  body: string;
}

export function request(
  server: string,
  identity: TlsIdentity,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<HttpResult> {
  const url = new URL(urlPath, server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        ca: identity.ca,
        cert: identity.cert,
        key: identity.key,
        timeout: timeoutMs,
        agent: false,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(identity.token ? { authorization: `Bearer ${identity.token}` } : {}),
        },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
