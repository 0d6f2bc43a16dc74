// Real randomness and key generation behind the Generators interface desiredState uses.
// desiredState is synchronous and pure; the slow work (RSA keys and scrypt hashes, tens of
// milliseconds each: docs/benchmarks.md) must not run on the event loop, where hundreds of new domains would block the operator
// past its lease and its liveness probe. So a reconcile decides once with recording generators,
// does the slow work asynchronously in libuv's thread pool (bounded per pass), and decides again
// with generators that replay the results (controller/reconcile.ts).
import { generateKeyPair, generateKeyPairSync, randomBytes } from 'node:crypto';
import { hashPassword, hashPasswordSync } from '../../../contract/users.ts';
import type { Generators } from '../desired/types.ts';

type Algorithm = Parameters<Generators['dkimKey']>[0];

const PEM = { type: 'pkcs8', format: 'pem' } as const;

export function dkimKeyAsync(algorithm: Algorithm): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, _publicKey: string, privateKey: string) =>
      error ? reject(error) : resolve(privateKey);
    if (algorithm === 'ed25519-sha256')
      generateKeyPair(
        'ed25519',
        { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: PEM },
        done,
      );
    else
      generateKeyPair(
        'rsa',
        { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: PEM },
        done,
      );
  });
}

export const generators: Generators = {
  // 32 random bytes: 256 bits, URL-safe so applications can paste it anywhere.
  password: () => randomBytes(32).toString('base64url'),
  hashPassword: hashPasswordSync,
  dkimKey: (algorithm) =>
    algorithm === 'ed25519-sha256'
      ? generateKeyPairSync('ed25519').privateKey.export(PEM).toString()
      : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export(PEM).toString(),
};

/** The slow generators, asynchronous: what a reconcile prepares between its two decisions. */
export type SlowGenerators = {
  dkimKey(algorithm: Algorithm): Promise<string>;
  hashPassword(password: string): Promise<string>;
};

export const slowGenerators: SlowGenerators = { dkimKey: dkimKeyAsync, hashPassword };

/** What one decision asked the generators for, in call order. */
export type Requests = { passwords: string[]; hashes: string[]; keys: Algorithm[] };

/**
 * Generators that hand out real passwords (cheap) but only note which hashes and keys were asked
 * for, answering with placeholders: the first decision of a pass, which is thrown away if it
 * asked for anything slow.
 */
export function recordingGenerators(base: Pick<Generators, 'password'>): {
  gen: Generators;
  requests: Requests;
} {
  const requests: Requests = { passwords: [], hashes: [], keys: [] };
  const gen: Generators = {
    password: () => {
      const password = base.password();
      requests.passwords.push(password);
      return password;
    },
    hashPassword: (password) => {
      requests.hashes.push(password);
      return '';
    },
    dkimKey: (algorithm) => {
      requests.keys.push(algorithm);
      return '';
    },
  };
  return { gen, requests };
}

/** The slow work the recorded requests need, at most `maxKeys` new keys (the rest wait a pass). */
export async function prepare(
  requests: Requests,
  slow: SlowGenerators,
  maxKeys: number,
): Promise<{ keys: string[]; hashes: Map<string, string> }> {
  const [keys, hashes] = await Promise.all([
    Promise.all(requests.keys.slice(0, maxKeys).map((algorithm) => slow.dkimKey(algorithm))),
    Promise.all([...new Set(requests.hashes)].map(async (p) => [p, await slow.hashPassword(p)] as const)),
  ]);
  return { keys, hashes: new Map(hashes) };
}

/**
 * Generators for the second decision: the same passwords in the same order, the prepared hashes
 * and keys in the order they were asked for (the same inputs make the same calls), undefined for
 * keys beyond this pass's share.
 */
export function replayingGenerators(
  requests: Requests,
  prepared: { keys: string[]; hashes: Map<string, string> },
  fallback: Generators,
): Generators {
  let password = 0;
  let key = 0;
  return {
    password: () => requests.passwords[password++] ?? fallback.password(),
    hashPassword: (p) => prepared.hashes.get(p) ?? fallback.hashPassword(p),
    dkimKey: () => prepared.keys[key++],
  };
}

export const requested = (r: Requests) => r.hashes.length > 0 || r.keys.length > 0;
