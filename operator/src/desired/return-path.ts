// The pool's return path, when any of its domains has spec.returnPath: the VERP signing key (one
// Secret generated once and never rewritten: a new key would orphan every bounce still on its way
// for mail already sent) and the Service that receives bounces and complaints on port 25 (the MX
// of the return-path domains). Pure.
import type { V1Service } from '@kubernetes/client-node';
import type { DefaultedRelayPool, DNSRecord, RelayPool } from '../api/types.ts';
import { cond, type ConditionInput } from '../api/conditions.ts';
import { mxRecord } from './dns.ts';
import { RETURN_PATH_KEY } from '../../../contract/layout.ts';
import { childMeta, names, selectorLabels } from './meta.ts';
import { generatedKeyInputs } from './generated-key.ts';
import type { GeneratedKeyInputs } from './generated-key.ts';
import type { Generators, KubeObject, Observed } from './types.ts';

/** The relay refuses a shorter key (relay config/runtime.ts). */
const MIN_KEY_BYTES = 16;

export type ReturnPathInputs = GeneratedKeyInputs;

export function returnPathInputs(pool: RelayPool, observed: Observed, gen: Generators): ReturnPathInputs {
  const name = names.returnPathKey(pool.metadata.name ?? '');
  return generatedKeyInputs(
    {
      name,
      key: RETURN_PATH_KEY,
      minBytes: MIN_KEY_BYTES,
      purpose: 'return-path',
      make: () =>
        ({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: childMeta(pool, name, 'return-path'),
          type: 'Opaque',
          data: { [RETURN_PATH_KEY]: Buffer.from(gen.password()).toString('base64') },
        }) as KubeObject,
    },
    observed,
  );
}

/**
 * Port 25 of the return-path domains' MX, to the relays' return-path listener. Same type and
 * annotations as the pool's Service; a LoadBalancer keeps the client address (Local), as mailbox
 * providers are identified by it in the logs.
 */
export function returnPathService(pool: DefaultedRelayPool): V1Service {
  const poolName = pool.metadata.name ?? '';
  const spec = pool.spec.service;
  const type = spec.type ?? 'ClusterIP';
  const svc: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(pool, names.returnPathService(poolName), 'return-path', {
      annotations: { ...spec.annotations },
    }),
    spec: {
      type,
      selector: selectorLabels(poolName),
      ports: [{ name: 'smtp', port: 25, targetPort: 'return-path', protocol: 'TCP' }],
    },
  };
  if (type === 'LoadBalancer' && svc.spec) svc.spec.externalTrafficPolicy = 'Local';
  return svc;
}

/**
 * The MX target of the pool's return-path domains: spec.returnPath.host, else delivery.ehloName
 * (a public name of the relays that the user made resolve to the return-path Service as well).
 * The Service's own name is cluster-internal, so there is nothing to fall back on after that.
 */
export function returnPathHost(pool: Pick<RelayPool, 'spec'>): { host: string; from: string } | undefined {
  const own = pool.spec.returnPath?.host;
  if (own) return { host: own.toLowerCase(), from: 'spec.returnPath.host' };
  const ehlo = pool.spec.delivery?.ehloName;
  return ehlo ? { host: ehlo.toLowerCase(), from: 'spec.delivery.ehloName' } : undefined;
}

/**
 * What a SendingDomain with spec.returnPath reports about it: the MX record to publish and the
 * ReturnPathReady condition, False (and no record) when the pool names no public host, so a missing
 * MX (bounces and complaints that can never come back) is said rather than silently absent.
 */
export function returnPathStatus(o: {
  returnPath: string;
  pool: string;
  host: { host: string; from: string } | undefined;
}): { record?: DNSRecord; condition: ConditionInput } {
  const service = names.returnPathService(o.pool);
  if (!o.host)
    return {
      condition: cond(
        'ReturnPathReady',
        'False',
        'NoPublicHost',
        `no MX to publish for ${o.returnPath}: set spec.returnPath.host of RelayPool ${o.pool} to the public name of Service ${service}'s external address; until the MX exists, bounces and complaints cannot come back`,
      ),
    };
  const record = mxRecord(o.returnPath, o.host.host);
  return {
    record,
    condition: cond(
      'ReturnPathReady',
      'True',
      'MXTarget',
      `publish ${o.returnPath} MX ${record.value} (${o.host.from}); it must resolve to Service ${service}'s external address`,
    ),
  };
}
