// Helpers the handoff suites share (relay-handoff: a drain to pool peers; relay-evacuate-to: an
// evacuation to another pool; relay-intake: a closed relay still taking a handoff): the two-relay
// rig, process exit, the deferral wait, the kill mid-transfer.
import type { SMTPServerOptions } from 'smtp-server';
import {
  freePort,
  readAccounting,
  removeDir,
  startScripted,
  tempDir,
  waitFor,
  writeHandoffSecret,
  type RelayProcess,
  type ScriptedUpstream,
} from './peers.ts';

/** Two relays' worth of scratch: a destination that defers every recipient, a spool and a handoff port each. */
export interface HandoffRig {
  upstream: ScriptedUpstream;
  /** Scratch directory for secrets and configs, removed with the rig. */
  dir: string;
  /** A handoff secret file in `dir` both relays may share (one pool). */
  secretFile: string;
  spools: { a: string; b: string };
  ports: { a: number; b: number };
}

/**
 * Starts the deferring destination and makes the scratch directories and ports; registers their
 * removal in `cleanups` (run in reverse by the suite's `after`).
 */
export async function handoffRig(
  name: string,
  cleanups: (() => Promise<void>)[],
  upstreamOptions: Partial<SMTPServerOptions> = {},
): Promise<HandoffRig> {
  const upstream = await startScripted(upstreamOptions);
  upstream.onRcpt = () => ({ code: 451, message: '4.4.1 destination down' });
  const dir = await tempDir(name);
  const spools = { a: await tempDir('spoolA'), b: await tempDir('spoolB') };
  cleanups.push(
    () => upstream.stop(),
    () => removeDir(dir),
    () => removeDir(spools.a),
    () => removeDir(spools.b),
  );
  const secretFile = await writeHandoffSecret(dir);
  const ports = { a: await freePort(), b: await freePort() };
  return { upstream, dir, secretFile, spools, ports };
}

export function exited(relay: RelayProcess): Promise<number | null> {
  return new Promise((r) =>
    relay.proc.exitCode !== null ? r(relay.proc.exitCode) : relay.proc.once('exit', (code) => r(code)),
  );
}

/** Waits until `relay` attempted every queued message once (all deferred at least once). */
export async function allDeferred(relay: RelayProcess, count: number): Promise<void> {
  await waitFor(
    async () =>
      new Set(
        (await readAccounting(relay.spoolDir)).filter((l) => l.outcome === 'deferred').map((l) => l.queueId),
      ).size >= count,
    120_000,
    `${count} messages deferred`,
  );
}

/**
 * Once `sender` has handed off its first message, freezes it (batches in flight, acknowledgements
 * not yet applied) and kills it with -9. Returns how many messages `receiver` had stored by then.
 */
export async function killMidTransfer(sender: RelayProcess, receiver: RelayProcess): Promise<number> {
  await waitFor(
    async () => (await sender.metric('mailfleet_relay_handoff_sent_messages_total').catch(() => 0)) > 0,
    30_000,
    'the transfer to start',
  );
  sender.proc.kill('SIGSTOP');
  const stored = await receiver.metric('mailfleet_relay_handoff_received_messages_total', {
    result: 'stored',
  });
  sender.proc.kill('SIGKILL');
  await exited(sender);
  return stored;
}
