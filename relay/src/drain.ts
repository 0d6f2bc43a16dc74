// Graceful stop (SIGTERM or POST /drain): refuse new sessions with 421, let open ones finish,
// then deliver the queue or hand it to the peer relay, all within drainTimeout. What is left
// stays in the spool for the next start.
import { durationMs } from './config/duration.ts';
import type { RuntimeConfig } from './config/runtime.ts';
import type { Deliverer } from './delivery/deliverer.ts';
import type { Logger } from './log.ts';
import { pendingRecipients } from './scheduler/model.ts';
import type { Scheduler } from './scheduler/scheduler.ts';
import type { Intake } from './smtp/server.ts';
import type { Spool } from './spool/store.ts';

/** The parts of a Relay a drain uses (relay.ts passes itself; declared here so drain.ts does not
 * import relay.ts, which imports drain.ts). */
export interface Drainable {
  readonly runtime: RuntimeConfig;
  draining: boolean;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly intake: Intake;
  readonly spool: Spool;
  readonly deliverer: Deliverer;
}

const HANDOFF_WORKERS = 4;

export async function drain(relay: Drainable): Promise<void> {
  const config = relay.runtime.config;
  const started = Date.now();
  const deadline = started + durationMs(config.drainTimeout);
  relay.draining = true;
  relay.log('info', 'drain started', {
    queued: relay.scheduler.messages.size,
    handoff: config.handoff ?? null,
  });

  // Listeners stay open until the end so new sessions get a 421 (and go to another relay)
  // rather than a refused connection; sessions already in a transaction finish it.
  if (config.handoff) {
    relay.scheduler.pause();
    await Promise.race([relay.scheduler.idle(), sleep(Math.max(0, deadline - Date.now()))]);
    await handOff(relay, config.handoff, deadline);
  } else {
    relay.scheduler.retryAll();
    await waitUntil(() => relay.scheduler.messages.size === 0, deadline);
  }
  relay.scheduler.pause();
  await Promise.race([relay.scheduler.idle(), sleep(Math.max(1000, deadline - Date.now()))]);
  await waitUntil(() => relay.intake.sessions.total === 0, Math.max(deadline, Date.now() + 1000));
  await relay.intake.close(1000);
  relay.log('info', 'drain finished', {
    remaining: relay.scheduler.messages.size,
    seconds: Math.round((Date.now() - started) / 100) / 10,
  });
}

async function handOff(
  relay: Drainable,
  target: { host: string; port: number },
  deadline: number,
): Promise<void> {
  const queue = [...relay.scheduler.messages.values()];
  let failures = 0;
  const worker = async () => {
    for (let m = queue.shift(); m && Date.now() < deadline; m = queue.shift()) {
      const recipients = pendingRecipients(m).map((r) => r.address);
      if (recipients.length === 0 || m.deleted) continue;
      const body = await relay.spool.readBody(m.envelope.id);
      if (!body) continue;
      const report = await relay.deliverer.deliverTo(target, {
        from: m.envelope.from,
        recipients,
        body,
        domain: '',
      });
      if (report.results.some((r) => r.outcome !== 'delivered')) failures++;
      await relay.scheduler.markHandedOff(m, report.results, report.host);
    }
  };
  await Promise.all(Array.from({ length: HANDOFF_WORKERS }, worker));
  if (failures > 0) relay.log('warn', 'handoff refused some messages; they stay in the spool', { failures });
}

async function waitUntil(done: () => boolean, deadline: number): Promise<void> {
  while (!done() && Date.now() < deadline) await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
