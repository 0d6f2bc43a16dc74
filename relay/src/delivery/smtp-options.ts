// What one outbound pool connects with: nodemailer SMTPConnection options, the AUTH to send and
// the pool's limits, decided from the delivery config and the target. Pure.
import type { SMTPConnectionAuth, SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection/index.js';
import type { DeliveryConfig } from '../config/types.ts';
import { durationMs } from '../config/duration.ts';
import type { TlsRequirement } from './tls-policy.ts';
import type { DaneExpectation } from './dane/tlsa.ts';

export interface Credentials {
  user: string;
  pass: string;
}

/** A RateLimit's connection settings for the messages it shapes. */
export interface ShapingPool {
  key: string;
  maxConnections: number | undefined;
  maxMessages: number | undefined;
  /** Room for each new connection, counted pool-wide (shared-state/connection-leases.ts). */
  gate?: ConnectionGate | undefined;
}

/** Room for one more connection, held as long as the connection is open. */
export interface ConnectionLease {
  release(): void;
}

/** Where a pool asks for room before opening a connection; never rejects. */
export interface ConnectionGate {
  /** A lease, or undefined: no room now (the pool asks again later). */
  acquire(): Promise<ConnectionLease | undefined>;
  /**
   * The pool refused earlier waits for room no more (its messages went over the connections it
   * has, or it closed): peers need not leave room for it.
   */
  withdraw(): void;
}

export interface PoolTarget {
  delivery: DeliveryConfig;
  credentials?: Credentials | undefined;
  host: string;
  port: number;
  /** smarthost: the configured TLS mode and AUTH; direct (MX hosts): opportunistic TLS. */
  kind: 'smarthost' | 'direct';
  /** The MX host name, for SNI (the connection goes to one of its addresses). */
  servername?: string | undefined;
  shaping?: ShapingPool | undefined;
  /** direct: what the destination's TLS policy asks of each connection (tls-policy.ts). */
  tlsRequirement?: TlsRequirement | undefined;
  /** MTA-STS testing mode: a connection failing the requirement still carries the mail. */
  tlsReportOnly?: boolean | undefined;
  /** direct, requirement `dane`: the TLSA records and names the chain is checked against. */
  tlsDane?: DaneExpectation | undefined;
}

export interface PoolLimits {
  /** Connections open or opening at once. */
  maxConnections: number;
  /** Messages sent over one connection before it is closed. */
  maxMessages: number;
  /** An unused connection is closed (QUIT) after this long. */
  idleTimeoutMs: number;
}

export interface PoolSettings {
  connection: SMTPConnectionOptions;
  /** Sent when the server offers AUTH; undefined: no AUTH. */
  auth: SMTPConnectionAuth | undefined;
  limits: PoolLimits;
  /** Checked after EHLO (and STARTTLS), before AUTH or any mail; 'none' for smarthosts, whose tls mode nodemailer enforces. */
  tlsRequirement: TlsRequirement;
  /** A failed requirement is only reported (SendInfo.tlsFailure), the connection used anyway. */
  tlsReportOnly: boolean;
  tlsDane?: DaneExpectation | undefined;
  /** Asked before each new connection; undefined: limits.maxConnections alone decides. */
  gate?: ConnectionGate | undefined;
}

// Below the 5 minutes RFC 5321 §4.5.3.2.7 asks a server to wait, so we close an idle connection
// before the server does (the value nodemailer's pool used).
export const IDLE_TIMEOUT_MS = 4 * 60 * 1000;
// A connection leased pool-wide holds room other relays of the pool may be waiting for: it goes
// as soon as this relay has nothing more for it.
export const LEASED_IDLE_TIMEOUT_MS = 1000;

export function poolSettings(target: PoolTarget): PoolSettings {
  const d = target.delivery;
  const connection: SMTPConnectionOptions = {
    host: target.host,
    port: target.port,
    name: d.ehloName,
    connectionTimeout: durationMs(d.connectTimeout),
    greetingTimeout: durationMs(d.commandTimeout),
    socketTimeout: durationMs(d.commandTimeout),
    logger: false,
  };
  let auth: SMTPConnectionAuth | undefined;
  const s = d.smarthost;
  if (target.kind === 'smarthost' && s) {
    connection.secure = s.tls === 'implicit';
    connection.requireTLS = s.tls === 'starttls-required';
    connection.opportunisticTLS = s.tls === 'starttls-opportunistic';
    connection.tls = { rejectUnauthorized: !s.tlsInsecure, servername: s.host };
    const c = target.credentials;
    if (c && (c.user || c.pass)) auth = { user: c.user, credentials: { user: c.user, pass: c.pass } };
  } else {
    // MX hosts: STARTTLS whenever offered; a refused STARTTLS continues in clear text. The
    // certificate is not rejected during the handshake but judged after it against the
    // destination's policy (tls-policy.ts), so a failure has a precise reason and defers the mail
    // before MAIL FROM; opportunistic destinations accept any certificate (RFC 7435).
    connection.opportunisticTLS = true;
    // DANE: SNI names the TLSA base domain (RFC 7672 §8.1), the CNAME target of a CNAME'd MX host.
    const servername = target.tlsDane?.names[0] ?? target.servername;
    connection.tls = servername ? { rejectUnauthorized: false, servername } : { rejectUnauthorized: false };
  }
  return {
    connection,
    auth,
    limits: {
      maxConnections: Math.min(d.maxConnectionsPerDestination, target.shaping?.maxConnections ?? Infinity),
      maxMessages: target.shaping?.maxMessages ?? d.maxMessagesPerConnection,
      idleTimeoutMs: target.shaping?.gate ? LEASED_IDLE_TIMEOUT_MS : IDLE_TIMEOUT_MS,
    },
    ...(target.shaping?.gate ? { gate: target.shaping.gate } : {}),
    tlsRequirement: target.kind === 'direct' ? (target.tlsRequirement ?? 'none') : 'none',
    tlsReportOnly: target.kind === 'direct' && target.tlsReportOnly === true,
    ...(target.kind === 'direct' && target.tlsDane ? { tlsDane: target.tlsDane } : {}),
  };
}

/** Pools by "host:port"; shaped messages get pools of their own, so a limit's settings apply to them alone. */
export function poolKey(base: string, shaping: ShapingPool | undefined): string {
  return shaping ? `${base}|${shaping.key}` : base;
}
