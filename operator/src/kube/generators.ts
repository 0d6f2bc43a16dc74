// Real randomness and key generation behind the Generators interface desiredState uses.
import { generateKeyPairSync, randomBytes, scryptSync } from 'node:crypto';
import type { Generators } from '../desired/types.ts';

/** The relay's users-file hash: $scrypt$N=16384,r=8,p=1$<salt b64>$<key b64> (64-byte key). */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 64, { N: 16384, r: 8, p: 1 });
  return `$scrypt$N=16384,r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

export const generators: Generators = {
  // 32 random bytes: 256 bits, URL-safe so applications can paste it anywhere.
  password: () => randomBytes(32).toString('base64url'),
  hashPassword,
  dkimKey: (algorithm) =>
    algorithm === 'ed25519-sha256'
      ? generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
      : generateKeyPairSync('rsa', { modulusLength: 2048 })
          .privateKey.export({ type: 'pkcs8', format: 'pem' })
          .toString(),
};
