// The only HTTP client of the operator: authenticates with a KubeConfig (in-cluster or
// KUBECONFIG), counts every request by verb in metrics, and streams watches line by line.
// Raw requests (not the generated API classes) so server-side apply sends exactly our JSON.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { OperatorError, codeForStatus } from '../errors.ts';
import type { OperatorMetrics } from '../metrics.ts';

export type RequestOptions = {
  body?: unknown;
  /** Sent as it is (with contentType) instead of `body` as JSON: a relay import of CSV lines. */
  rawBody?: string;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** Metric label: what the request does (get, list, create, apply, patch, update, delete). */
  verb: string;
  signal?: AbortSignal;
  /** Accept header (default application/json); metadata-only lists and watches set their own. */
  accept?: string;
  /** The caller needs no answer: a 2xx body is drained unread (writes echo whole objects back). */
  discard?: boolean;
  /** Leader election's own requests: not cut off by fence(). */
  unfenced?: boolean;
  /** Extra request headers (the CLI's relay token through the pod proxy). */
  headers?: Record<string, string>;
};

export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #metrics: OperatorMetrics | undefined;
  readonly server: URL;
  readonly #httpsAgent = new https.Agent({ keepAlive: true });
  readonly #httpAgent = new http.Agent({ keepAlive: true });
  /** Aborted by fence(): every request in flight is cut off and no new one is sent. */
  readonly #fence = new AbortController();

  constructor(kc: KubeConfig, metrics?: OperatorMetrics) {
    this.#kc = kc;
    this.#metrics = metrics;
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(server);
  }

  /**
   * Stops this client for good: requests in flight are aborted and new ones fail at once. Called
   * when leadership is lost, so a former leader's writes cannot land after a new leader's.
   */
  fence(): void {
    this.#fence.abort();
  }

  async #open(method: string, path: string, o: RequestOptions): Promise<http.IncomingMessage> {
    if (!o.unfenced && this.#fence.signal.aborted)
      throw new OperatorError('LEADERSHIP_LOST', `${method} ${path}: not sent, leadership lost`);
    const signal = o.unfenced
      ? o.signal
      : o.signal
        ? AbortSignal.any([o.signal, this.#fence.signal])
        : this.#fence.signal;
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(o.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const options: https.RequestOptions = {
      method,
      headers: { ...o.headers, Accept: o.accept ?? 'application/json' },
      timeout: o.verb === 'watch' ? 0 : 30_000,
    };
    await this.#kc.applyToHTTPSOptions(options);
    // client-node hands every call a new Agent, which means a new TCP and TLS connection per
    // request: a handshake on both ends each time. One keep-alive agent reuses connections (it
    // pools them by the TLS options of each request, so rotated client certificates still apply).
    options.agent = url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent;
    const body = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    if (body !== undefined) {
      options.headers = { ...options.headers, 'Content-Type': o.contentType ?? 'application/json' };
    }
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { ...options, ...(signal ? { signal } : {}) }, resolve);
      req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url.pathname}`)));
      req.on('error', (e) =>
        reject(new OperatorError('API_UNAVAILABLE', `${method} ${url.pathname}: ${e.message}`)),
      );
      req.end(body);
    });
  }

  /** A JSON request; non-2xx answers throw an OperatorError with the status. */
  async request<T = Record<string, unknown>>(method: string, path: string, o: RequestOptions): Promise<T> {
    let res: http.IncomingMessage;
    try {
      res = await this.#open(method, path, o);
    } catch (error) {
      this.#count(o.verb, path, 'error');
      throw error;
    }
    const status = res.statusCode ?? 0;
    if (o.discard && status >= 200 && status < 300) {
      this.#count(o.verb, path, String(status));
      res.resume();
      await new Promise<void>((resolve, reject) => res.once('end', resolve).once('error', reject));
      return {} as T;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    this.#count(o.verb, path, String(status));
    if (status < 200 || status >= 300) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // not JSON: keep the raw text
      }
      throw new OperatorError(codeForStatus(status), `${method} ${path}: ${status} ${message}`, status);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Any request, any status: the status and body text (the CLI's pod-proxy calls to relays). */
  async requestText(
    method: string,
    path: string,
    o: RequestOptions,
  ): Promise<{ status: number; text: string }> {
    const res = await this.#open(method, path, o);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    this.#count(o.verb, path, String(res.statusCode ?? 0));
    return { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') };
  }

  /** A watch: calls onEvent per line until the server closes the stream (resolve) or it fails (reject). */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: { type: string; object: Record<string, unknown> }) => void,
    signal: AbortSignal,
    accept?: string,
  ): Promise<void> {
    const res = await this.#open('GET', path, {
      verb: 'watch',
      query: { ...query, watch: true },
      signal,
      ...(accept ? { accept } : {}),
    });
    this.#count('watch', path, String(res.statusCode ?? 0));
    if ((res.statusCode ?? 0) !== 200) {
      res.resume();
      throw new OperatorError(
        codeForStatus(res.statusCode ?? 0),
        `watch ${path}: ${res.statusCode}`,
        res.statusCode,
      );
    }
    let buffer = '';
    res.setEncoding('utf8');
    for await (const chunk of res) {
      buffer += chunk as string;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) onEvent(JSON.parse(line) as { type: string; object: Record<string, unknown> });
        newline = buffer.indexOf('\n');
      }
    }
  }

  #count(verb: string, path: string, code: string): void {
    // The resource is the plural after the namespace (or the group version), without names.
    const parts = path.split('?')[0]?.split('/') ?? [];
    const at = parts.indexOf('namespaces');
    const resource =
      at >= 0 && parts.length > at + 2 ? (parts[at + 2] ?? '') : (parts[parts.length - 1] ?? '');
    this.#metrics?.apiRequests.inc({ verb, resource, code });
  }
}
