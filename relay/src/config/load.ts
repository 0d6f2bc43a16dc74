// Reading the config file: YAML text -> validated RelayConfig with file paths made absolute
// (relative paths are relative to the config file, so relay/examples/local.yaml works from any cwd).
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import type { RelayConfig, ValidationResult } from './types.ts';
import { validateConfig, type ValidateOptions } from './validate.ts';

/** Pure: parse and validate YAML text. */
export function parseConfigText(
  text: string,
  configPath: string,
  options: ValidateOptions = {},
): ValidationResult {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    return {
      ok: false,
      errors: [{ path: '(yaml)', message: (err as Error).message.split('\n')[0] ?? 'parse error' }],
    };
  }
  const result = validateConfig(raw, options);
  return result.ok ? { ok: true, config: resolvePaths(result.config, dirname(configPath)) } : result;
}

export async function loadConfigFile(
  configPath: string,
  options: ValidateOptions = {},
): Promise<ValidationResult> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ path: '(file)', message: (err as Error).message }] };
  }
  return parseConfigText(text, configPath, options);
}

/** Pure: a copy of the config with every file path absolute. */
function resolvePaths(config: RelayConfig, baseDir: string): RelayConfig {
  const abs = (p: string) => (p ? resolve(baseDir, p) : p);
  const out: RelayConfig = structuredClone(config);
  out.spool.dir = abs(out.spool.dir);
  out.accounting.file = abs(out.accounting.file);
  if (out.tls) {
    out.tls.certFile = abs(out.tls.certFile);
    out.tls.keyFile = abs(out.tls.keyFile);
  }
  if (out.auth.usersFile) out.auth.usersFile = abs(out.auth.usersFile);
  if (out.delivery.smarthost?.credentialsFile) {
    out.delivery.smarthost.credentialsFile = abs(out.delivery.smarthost.credentialsFile);
  }
  for (const d of out.sendingDomains) if (d.dkim) d.dkim.keyFile = abs(d.dkim.keyFile);
  if (out.tracking) out.tracking.keyFile = abs(out.tracking.keyFile);
  if (out.returnPath) out.returnPath.keyFile = abs(out.returnPath.keyFile);
  for (const t of out.http.tokens) t.file = abs(t.file);
  if (out.handoff) out.handoff.secretFile = abs(out.handoff.secretFile);
  if (out.handoff?.evacuateTo) out.handoff.evacuateTo.secretFile = abs(out.handoff.evacuateTo.secretFile);
  out.suppression.file = abs(out.suppression.file);
  if (out.events) {
    out.events.secretFile = abs(out.events.secretFile);
    out.events.dir = abs(out.events.dir);
  }
  if (out.sharedState?.passwordFile) out.sharedState.passwordFile = abs(out.sharedState.passwordFile);
  return out;
}

/** Every file the config refers to, watched for changes alongside the config itself. */
export function referencedFiles(config: RelayConfig): string[] {
  const files = [
    config.tls?.certFile,
    config.tls?.keyFile,
    config.auth.usersFile,
    config.delivery.smarthost?.credentialsFile,
    config.handoff?.secretFile,
    config.handoff?.evacuateTo?.secretFile,
    config.returnPath?.keyFile,
    config.tracking?.keyFile,
    config.events?.secretFile,
    ...config.sendingDomains.map((d) => d.dkim?.keyFile),
    ...config.http.tokens.map((t) => t.file),
  ];
  return [...new Set(files.filter((f): f is string => typeof f === 'string' && f !== ''))];
}
