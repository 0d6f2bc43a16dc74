// The relay config every relay benchmark runs: SMTP on loopback, relaying for 127.0.0.0/8 through
// a smarthost (smtp-sink) with 20 connections, example.com a sending domain (signed with
// `dkimKeyFile` when given), no free-space floor. One builder, so the benchmarks compare the same
// relay; each passes only what differs (ports, directories, workers, retry).

export interface BenchRelayOptions {
  smtpPort: number;
  httpPort: number;
  /** The smarthost's port (smtp-sink, or nothing listening when deliveries are to be deferred). */
  sinkPort: number;
  spoolDir: string;
  /** Accounting log file; none when absent. */
  accountingFile?: string;
  /** rsa-sha256 key file: example.com's mail is DKIM-signed with selector s2048. */
  dkimKeyFile?: string;
  /** The relay's `workers`; the config's default (1) when absent. */
  workers?: number;
  /** Extra top-level fields (e.g. `retry`). */
  extra?: Record<string, unknown>;
}

/** The config as YAML-ready data; the fields a benchmark reads back are typed. */
export interface BenchRelayConfig extends Record<string, unknown> {
  listeners: { smtp: { enabled: true; host: string; port: number } };
  http: { host: string; port: number };
  spool: { dir: string; minFreeBytes: number };
}

export function benchRelayConfig(options: BenchRelayOptions): BenchRelayConfig {
  return {
    hostname: 'relay.bench.localhost',
    listeners: { smtp: { enabled: true, host: '127.0.0.1', port: options.smtpPort } },
    allowedNetworks: ['127.0.0.0/8'],
    trustedNetworks: ['127.0.0.0/8'],
    sendingDomains: [
      options.dkimKeyFile
        ? {
            domain: 'example.com',
            dkim: { selector: 's2048', algorithm: 'rsa-sha256', keyFile: options.dkimKeyFile },
          }
        : { domain: 'example.com' },
    ],
    delivery: {
      mode: 'smarthost',
      smarthost: { host: '127.0.0.1', port: options.sinkPort, tls: 'starttls-opportunistic' },
      maxConnectionsPerDestination: 20,
    },
    limits: { maxConnectionsPerClient: 1000 },
    spool: { dir: options.spoolDir, minFreeBytes: 0 },
    ...(options.accountingFile ? { accounting: { file: options.accountingFile } } : {}),
    http: { host: '127.0.0.1', port: options.httpPort },
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...options.extra,
  };
}
