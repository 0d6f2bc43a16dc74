import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { genRedirect, loadKubeConfigClass } from './kubeconfig.ts';

const CONFIG_URL = 'file:///app/node_modules/@kubernetes/client-node/dist/config.js';

test('only config.js importing gen/index.js is redirected', () => {
  const url = genRedirect('./gen/index.js', CONFIG_URL) ?? assert.fail('not redirected');
  assert.ok(url.startsWith('data:text/javascript,'));
  const source = decodeURIComponent(url.slice('data:text/javascript,'.length));
  assert.match(
    source,
    /export \{ createConfiguration \} from "file:\/\/\/app\/node_modules\/@kubernetes\/client-node\/dist\/gen\/configuration\.js";/,
  );
  assert.match(source, /export \{ ServerConfiguration \} from ".*\/dist\/gen\/servers\.js";/);
  assert.equal(
    genRedirect('./gen/index.js', 'file:///app/node_modules/@kubernetes/client-node/dist/index.js'),
    undefined,
  );
  assert.equal(genRedirect('./gen/http/http.js', CONFIG_URL), undefined);
  assert.equal(genRedirect('./gen/index.js', undefined), undefined);
});

test('the KubeConfig loaded this way reads a kubeconfig and authenticates requests', async () => {
  // Fails at import ("does not provide an export named ...") if client-node's config.js needs
  // more from its generated API than the redirect provides.
  const resolved: string[] = [];
  registerHooks({
    resolve(specifier, context, next) {
      resolved.push(specifier);
      return next(specifier, context);
    },
  });
  const KubeConfig = await loadKubeConfigClass();
  assert.ok(resolved.includes('./config_types.js'), 'client-node modules went through the hooks');
  assert.ok(!resolved.some((s) => s.includes('models/')), 'no generated model was loaded');
  const kc = new KubeConfig();
  kc.loadFromString(
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]',
      'contexts: [{name: x, context: {cluster: c, user: u, namespace: mail}}]',
      'users: [{name: u, user: {token: secret-token}}]',
      'current-context: x',
    ].join('\n'),
  );
  assert.equal(kc.getCurrentCluster()?.server, 'https://127.0.0.1:6443');
  const options: { headers?: Record<string, string>; rejectUnauthorized?: boolean } = {};
  await kc.applyToHTTPSOptions(options);
  assert.equal(options.headers?.Authorization, 'Bearer secret-token');
  assert.equal(options.rejectUnauthorized, false);
});
