// Small field readers for validateConfig(): each reads one key of a plain object, records an error
// naming the dotted path when the value is wrong, and returns the default so validation can go on
// and report every problem at once.
import { isIP } from 'node:net';
import type { ConfigError } from './types.ts';
import { parseDuration } from './duration.ts';

export type Obj = Record<string, unknown>;

export class FieldReader {
  /** Every problem found so far, in document order. */
  readonly errors: ConfigError[] = [];

  fail(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  /** A nested object; absent means `{}`; unknown keys are errors (they are usually typos). */
  object(raw: unknown, path: string, known: readonly string[]): Obj {
    if (raw === undefined || raw === null) return {};
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      this.fail(path || '(root)', 'must be a mapping');
      return {};
    }
    const obj = raw as Obj;
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) this.fail(join(path, key), 'unknown field');
    }
    return obj;
  }

  string(obj: Obj, key: string, path: string, fallback: string, required = false): string {
    const value = obj[key];
    const at = join(path, key);
    if (value === undefined || value === null) {
      if (required) this.fail(at, 'is required');
      return fallback;
    }
    if (typeof value !== 'string') {
      this.fail(at, 'must be a string');
      return fallback;
    }
    if (required && value.trim() === '') this.fail(at, 'must not be empty');
    return value;
  }

  optionalString(obj: Obj, key: string, path: string): string | undefined {
    if (obj[key] === undefined || obj[key] === null) return undefined;
    const value = this.string(obj, key, path, '', true);
    return value === '' ? undefined : value;
  }

  boolean(obj: Obj, key: string, path: string, fallback: boolean): boolean {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') {
      this.fail(join(path, key), 'must be true or false');
      return fallback;
    }
    return value;
  }

  integer(obj: Obj, key: string, path: string, fallback: number, min: number, max: number): number {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(join(path, key), `must be an integer ${min}-${max}`);
      return fallback;
    }
    return value;
  }

  port(obj: Obj, key: string, path: string, fallback: number): number {
    return this.integer(obj, key, path, fallback, 1, 65535);
  }

  oneOf<T extends string>(obj: Obj, key: string, path: string, allowed: readonly T[], fallback: T): T {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(join(path, key), `must be one of ${allowed.join(', ')}`);
      return fallback;
    }
    return value as T;
  }

  duration(obj: Obj, key: string, path: string, fallback: string): string {
    const value = obj[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' || parseDuration(value) === undefined) {
      this.fail(join(path, key), 'must be a duration such as 30s, 5m, 1h or 5d');
      return fallback;
    }
    return value;
  }

  list(obj: Obj, key: string, path: string): unknown[] {
    const value = obj[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.fail(join(path, key), 'must be a list');
      return [];
    }
    return value;
  }

  stringList(obj: Obj, key: string, path: string, check?: (item: string) => string | undefined): string[] {
    const out: string[] = [];
    this.list(obj, key, path).forEach((item, index) => {
      const at = `${join(path, key)}[${index}]`;
      if (typeof item !== 'string') return this.fail(at, 'must be a string');
      const problem = check?.(item);
      if (problem) return this.fail(at, problem);
      out.push(item);
    });
    return out;
  }
}

export function join(path: string, key: string): string {
  // Quote keys that are empty or not plain words, so an error always names a visible field.
  const name = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${name}` : name;
}

/** Returns a problem description, or undefined when `text` is an IPv4/IPv6 CIDR or address. */
export function cidrProblem(text: string): string | undefined {
  const [address = '', prefix, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return `${JSON.stringify(text)} is not a CIDR such as 10.0.0.0/8`;
  if (prefix === undefined) return undefined;
  const bits = Number(prefix);
  const max = family === 4 ? 32 : 128;
  if (!/^\d+$/.test(prefix) || bits > max) return `prefix length must be 0-${max}`;
  return undefined;
}

const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function domainProblem(text: string): string | undefined {
  return HOSTNAME.test(text) ? undefined : `${JSON.stringify(text)} is not a domain name`;
}

export function hostProblem(text: string): string | undefined {
  return isIP(text) !== 0 || HOSTNAME.test(text)
    ? undefined
    : `${JSON.stringify(text)} is not a host name or IP`;
}
