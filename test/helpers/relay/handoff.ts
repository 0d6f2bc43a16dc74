// Helpers both handoff suites share (relay-handoff: a drain to pool peers; relay-evacuate: an
// evacuation to another pool): process exit, the deferral wait, the kill mid-transfer.
import { readAccounting, waitFor, type RelayProcess } from './peers.ts';

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
