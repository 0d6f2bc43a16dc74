// DKIM keys: generation and the DNS TXT record that publishes the public key (RFC 6376 §3.6.1,
// RFC 8463 §4: an ed25519 p= is the raw 32-byte key, an RSA p= the DER SubjectPublicKeyInfo).
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { DkimAlgorithm } from './sign.ts';

export function generateDkimKey(algorithm: DkimAlgorithm): string {
  const { privateKey } =
    algorithm === 'rsa-sha256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ed25519');
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function publicKeyRecord(privateKey: KeyObject | string): string {
  const publicKey = createPublicKey(privateKey);
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const raw = publicKey.export({ format: 'jwk' }).x!;
    return `v=DKIM1; k=ed25519; p=${Buffer.from(raw, 'base64url').toString('base64')}`;
  }
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `v=DKIM1; k=rsa; p=${der.toString('base64')}`;
}
