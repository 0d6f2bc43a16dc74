// Dependency audit for the test command: fails on any high or critical advisory.
//
// 1. Online: `npm audit --audit-level=high --json`; fails when it reports high or critical findings.
// 2. Offline fallback, when the audit endpoint cannot be used (this machine's registry answers 405,
//    or there is no network): every installed copy of the packages in ADVISORIES (nested copies
//    included, e.g. one under smtp-server/node_modules) is compared with its minimum safe version.
//    The table is small and hand-kept: update it when an advisory is published.
// The output always says which check ran. Exit 0: clean, 1: findings, 2: neither check could run.
import { spawnSync } from 'node:child_process';
import { globSync, readFileSync } from 'node:fs';

interface Advisory {
  package: string;
  /** Versions below this are affected. */
  minSafe: string;
  severity: 'high' | 'critical' | 'floor';
  id: string;
  summary: string;
}

/** Minimum safe versions. "floor" entries are this project's own minimum, not a published advisory. */
export const ADVISORIES: Advisory[] = [
  {
    package: 'nodemailer',
    minSafe: '6.4.16',
    severity: 'critical',
    id: 'CVE-2020-7769',
    summary: 'command injection through the sendmail transport',
  },
  {
    package: 'nodemailer',
    minSafe: '6.6.1',
    severity: 'high',
    id: 'CVE-2021-23400',
    summary: 'header injection through addresses',
  },
  {
    package: 'nodemailer',
    minSafe: '7.0.7',
    severity: 'floor',
    id: 'GHSA-mm7p-fcc7-pg87',
    summary: 'mail to an unintended domain (address parser interpretation conflict; rated moderate)',
  },
  {
    package: 'smtp-server',
    minSafe: '3.21.6',
    severity: 'floor',
    id: 'mailfleet floor',
    summary:
      'the version whose DATA termination, STARTTLS and source-route behaviour the relay security tests verify',
  },
];

export function versionBelow(version: string, minimum: string): boolean {
  const a = version.split(/[.+-]/).map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y;
  }
  return false;
}

function online(): { ran: true; findings: number; summary: string } | { ran: false; reason: string } {
  const r = spawnSync('npm', ['audit', '--audit-level=high', '--json'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  let report: {
    metadata?: { vulnerabilities?: Record<string, number> };
    message?: string;
    error?: { summary?: string };
  };
  try {
    report = JSON.parse(r.stdout || '{}');
  } catch {
    return { ran: false, reason: `unreadable npm audit output (exit ${r.status})` };
  }
  const counts = report.metadata?.vulnerabilities;
  if (!counts) {
    const reason =
      report.message ??
      report.error?.summary ??
      (r.stderr.split('\n').find((l) => l.includes('audit')) || `exit ${r.status}`);
    return { ran: false, reason: reason.trim() };
  }
  const findings = (counts.high ?? 0) + (counts.critical ?? 0);
  return {
    ran: true,
    findings,
    summary: Object.entries(counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  };
}

function offline(): string[] {
  const problems: string[] = [];
  const packages = [...new Set(ADVISORIES.map((a) => a.package))];
  for (const name of packages) {
    const files = globSync([
      `node_modules/${name}/package.json`,
      `node_modules/**/node_modules/${name}/package.json`,
    ]);
    if (files.length === 0) problems.push(`${name}: not installed (run npm ci)`);
    for (const file of files) {
      const version = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
      const hits = ADVISORIES.filter((a) => a.package === name && versionBelow(version, a.minSafe));
      for (const a of hits)
        problems.push(`${file}: ${name}@${version} < ${a.minSafe} (${a.severity}, ${a.id}: ${a.summary})`);
      if (hits.length === 0) process.stdout.write(`  ok  ${name}@${version} (${file})\n`);
    }
  }
  return problems;
}

function main(): void {
  const result = online();
  if (result.ran) {
    process.stdout.write(`audit: ONLINE check (npm audit --audit-level=high): ${result.summary}\n`);
    if (result.findings > 0) {
      process.stdout.write(
        `audit: FAILED, ${result.findings} high/critical finding(s); run npm audit for details\n`,
      );
      process.exit(1);
    }
    process.stdout.write('audit: passed\n');
    return;
  }
  process.stdout.write(`audit: npm audit unavailable (${result.reason})\n`);
  process.stdout.write('audit: OFFLINE check of installed versions against scripts/audit.ts ADVISORIES\n');
  const problems = offline();
  for (const p of problems) process.stdout.write(`  BAD ${p}\n`);
  if (problems.length > 0) {
    process.stdout.write(`audit: FAILED (offline check), ${problems.length} finding(s)\n`);
    process.exit(1);
  }
  process.stdout.write('audit: passed (offline check only: advisories newer than the table are not known)\n');
}

if (import.meta.main) main();
