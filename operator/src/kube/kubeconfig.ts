// client-node's KubeConfig (kubeconfig files, in-cluster config, every auth provider) without
// client-node's generated API. The operator sends raw requests (kube/client.ts) and uses nothing
// of the generated clients, but `dist/config.js` imports `./gen/index.js` for two names, and that
// file loads all 2,700 generated models and API classes: 40 MB of the operator's resident memory
// (docs/operator.md). A module resolve hook hands config.js a module with just those two names.
// If a client-node upgrade makes config.js import another name from gen, linking fails at start
// with "does not provide an export named", never silently (kubeconfig.test.ts loads it).
import { registerHooks } from 'node:module';
import type { KubeConfig } from '@kubernetes/client-node';

/** What `dist/config.js` takes from `./gen/index.js`, and the generated file each comes from. */
const GEN_EXPORTS: Record<string, string> = {
  createConfiguration: 'configuration.js',
  ServerConfiguration: 'servers.js',
};

/** The module that stands in for client-node's gen/index.js when config.js imports it (pure). */
export function genRedirect(specifier: string, parentURL: string | undefined): string | undefined {
  if (specifier !== './gen/index.js' || !parentURL?.endsWith('/@kubernetes/client-node/dist/config.js'))
    return undefined;
  const source = Object.entries(GEN_EXPORTS)
    .map(
      ([name, file]) =>
        `export { ${name} } from ${JSON.stringify(new URL(`./gen/${file}`, parentURL).href)};`,
    )
    .join('\n');
  return `data:text/javascript,${encodeURIComponent(source)}`;
}

let hooked = false;

/** The KubeConfig class, loaded without the generated API. */
export async function loadKubeConfigClass(): Promise<typeof KubeConfig> {
  if (!hooked) {
    registerHooks({
      resolve(specifier, context, next) {
        const url = genRedirect(specifier, context.parentURL);
        return url ? { url, shortCircuit: true } : next(specifier, context);
      },
    });
    hooked = true;
  }
  const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
  return KubeConfig;
}
