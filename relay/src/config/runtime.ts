// The running configuration: the validated config plus everything read from the files it names
// (users, TLS key/certificate, smarthost credentials). Built whole, or not at all: a reload that
// fails anywhere leaves the previous RuntimeConfig in place.
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { parse } from 'yaml';
import type { ConfigError, RelayConfig } from './types.ts';
import { loadConfigFile } from './load.ts';
import type { ValidateOptions } from './validate.ts';
import { parseUsersFile, type Users } from '../../../contract/users.ts';
import { returnPaths, type ReturnPaths } from '../return-path/envelopes.ts';
import { networkMatcher, type NetworkMatcher } from '../policy/networks.ts';
import { tokenDigest, type AdminToken } from '../admin/auth.ts';
import { adminTokenProblem } from '../../../contract/tokens.ts';

export interface RuntimeConfig {
  config: RelayConfig;
  users: Users;
  tls?: { key: Buffer; cert: Buffer };
  credentials?: { user: string; pass: string };
  /** The pool's handoff secret (handoff.secretFile, surrounding whitespace removed). */
  handoffSecret?: Buffer;
  /**
   * The evacuation target's secret (handoff.evacuateTo.secretFile), or why it is not usable. Not a
   * reason to refuse the config: without it the relay keeps delivering itself, and the file is
   * watched, so the evacuation starts when it appears.
   */
  evacuation?: { secret: Buffer } | { problem: string };
  /** VERP key and return-path domains (returnPath.keyFile and sendingDomains[].returnPath). */
  returnPaths?: ReturnPaths;
  allowed: NetworkMatcher;
  trusted: NetworkMatcher;
  /** The events webhook's signing secret (events.secretFile, surrounding whitespace removed). */
  eventsSecret?: Buffer;
  /** The shared store's password (sharedState.passwordFile, surrounding whitespace removed). */
  sharedStatePassword?: string;
  /** Management API tokens, read from http.tokens[].file (digests only). */
  adminTokens: AdminToken[];
}

export type RuntimeResult = { ok: true; runtime: RuntimeConfig } | { ok: false; errors: ConfigError[] };

export async function loadRuntime(configPath: string, options: ValidateOptions): Promise<RuntimeResult> {
  const loaded = await loadConfigFile(configPath, options);
  if (!loaded.ok) return loaded;
  const config = loaded.config;
  const errors: ConfigError[] = [];
  const read = async (path: string, field: string): Promise<Buffer | undefined> => {
    try {
      return await readFile(path);
    } catch (err) {
      errors.push({
        path: field,
        message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      });
      return undefined;
    }
  };
  const runtime: RuntimeConfig = {
    config,
    users: new Map(),
    allowed: networkMatcher(config.allowedNetworks),
    trusted: networkMatcher(config.trustedNetworks),
    adminTokens: [],
  };
  if (config.auth.usersFile) {
    const text = await read(config.auth.usersFile, 'auth.usersFile');
    if (text) {
      const parsed = parseUsersFile(text.toString('utf8'));
      if (parsed.ok) runtime.users = parsed.users;
      else errors.push({ path: 'auth.usersFile', message: parsed.error });
    }
  }
  if (config.tls) {
    const key = await read(config.tls.keyFile, 'tls.keyFile');
    const cert = await read(config.tls.certFile, 'tls.certFile');
    if (key && !key.includes('PRIVATE KEY'))
      errors.push({ path: 'tls.keyFile', message: 'not a PEM private key' });
    if (cert && !cert.includes('CERTIFICATE'))
      errors.push({ path: 'tls.certFile', message: 'not a PEM certificate' });
    if (key && cert && key.includes('PRIVATE KEY') && cert.includes('CERTIFICATE')) {
      // A key that does not belong to the certificate is taken silently by the listener (OpenSSL
      // drops the mismatched key) and every TLS handshake then fails. Refused here, the reload
      // keeps the pair in force: a Secret edited key first, certificate second, never breaks TLS.
      const problem = pairProblem(key, cert);
      if (problem) errors.push({ path: 'tls.keyFile', message: problem });
      else runtime.tls = { key, cert };
    }
  }
  const credentialsFile = config.delivery.smarthost?.credentialsFile;
  if (credentialsFile) {
    const text = await read(credentialsFile, 'delivery.smarthost.credentialsFile');
    if (text) {
      const credentials = parseCredentials(text.toString('utf8'));
      if (credentials) runtime.credentials = credentials;
      else errors.push({ path: 'delivery.smarthost.credentialsFile', message: 'expected username:password' });
    }
  }
  if (config.handoff) {
    const text = await read(config.handoff.secretFile, 'handoff.secretFile');
    const secret = text && Buffer.from(text.toString('utf8').trim());
    // 16 bytes: a guessable secret would let anyone on the pod network inject mail.
    if (secret && secret.length < 16)
      errors.push({ path: 'handoff.secretFile', message: 'the secret must be at least 16 characters' });
    else if (secret) runtime.handoffSecret = secret;
  }
  const evacuateTo = config.handoff?.evacuateTo;
  if (evacuateTo) runtime.evacuation = await readEvacuationSecret(evacuateTo.secretFile);
  if (config.returnPath) {
    const text = await read(config.returnPath.keyFile, 'returnPath.keyFile');
    const key = text && Buffer.from(text.toString('utf8').trim());
    // 16 bytes: the key is all that stands between a forger and the pool's suppression list.
    if (key && key.length < 16)
      errors.push({ path: 'returnPath.keyFile', message: 'the key must be at least 16 characters' });
    else if (key) runtime.returnPaths = returnPaths(key, config.sendingDomains);
  }
  if (config.events) {
    const text = await read(config.events.secretFile, 'events.secretFile');
    const secret = text && Buffer.from(text.toString('utf8').trim());
    // 16 bytes: the receiver trusts a batch because of this signature.
    if (secret && secret.length < 16)
      errors.push({ path: 'events.secretFile', message: 'the secret must be at least 16 characters' });
    else if (secret) runtime.eventsSecret = secret;
  }
  if (config.sharedState?.passwordFile) {
    const text = await read(config.sharedState.passwordFile, 'sharedState.passwordFile');
    if (text) runtime.sharedStatePassword = text.toString('utf8').trim();
  }
  for (const [i, t] of config.http.tokens.entries()) {
    const text = await read(t.file, `http.tokens[${i}].file`);
    if (!text) continue;
    const problem = adminTokenProblem(text.toString('utf8').trim());
    if (problem) errors.push({ path: `http.tokens[${i}].file`, message: problem });
    else
      runtime.adminTokens.push({
        name: t.name,
        role: t.role,
        digest: tokenDigest(text.toString('utf8').trim()),
      });
  }
  for (const [i, d] of config.sendingDomains.entries()) {
    if (d.dkim) await read(d.dkim.keyFile, `sendingDomains[${i}].dkim.keyFile`);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, runtime };
}

async function readEvacuationSecret(path: string): Promise<RuntimeConfig['evacuation']> {
  try {
    const secret = Buffer.from((await readFile(path, 'utf8')).trim());
    return secret.length < 16
      ? { problem: `${path}: the secret must be at least 16 characters` }
      : { secret };
  } catch (err) {
    return { problem: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}` };
  }
}

/** `username:password` on one line, or YAML {username, password}. Pure. */
function parseCredentials(text: string): { user: string; pass: string } | undefined {
  const trimmed = text.trim();
  if (/^username\s*:/m.test(trimmed)) {
    try {
      const doc = parse(trimmed) as { username?: unknown; password?: unknown };
      if (typeof doc.username === 'string' && typeof doc.password === 'string') {
        return { user: doc.username, pass: doc.password };
      }
    } catch {
      return undefined;
    }
    return undefined;
  }
  const colon = trimmed.indexOf(':');
  if (colon <= 0 || trimmed.includes('\n')) return undefined;
  return { user: trimmed.slice(0, colon), pass: trimmed.slice(colon + 1) };
}

/** Why a PEM key and certificate cannot serve together (undefined: they can). */
function pairProblem(key: Buffer, cert: Buffer): string | undefined {
  try {
    return new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))
      ? undefined
      : 'does not belong to the certificate in tls.certFile';
  } catch (err) {
    return `key or certificate unreadable: ${(err as Error).message}`;
  }
}
