// One worker process (config `workers` > 1): a whole relay on its spool shard and its part of the
// limits, sharing the SMTP, handoff and return-path listeners with its siblings through
// node:cluster. It serves no management port; it answers the primary's requests over IPC with its
// own route table, and tells the primary of its suppression-list changes so the others apply them.
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { runRoute, type Reply } from '../admin/http.ts';
import { Relay, type RelayOptions } from '../relay.ts';
import { drainOnSignals } from '../signals.ts';
import { withFields } from '../../../contract/log.ts';
import type { PrimaryMessage, WorkerMessage, WorkerRequest, WorkerResponses } from './ipc.ts';
import type { WorkerSlot } from './plan.ts';

export type WorkerOptions = Omit<RelayOptions, 'worker' | 'onDrainRequest'> & { slot: WorkerSlot };

export async function runWorker(options: WorkerOptions): Promise<void> {
  const log = withFields(options.log, { worker: options.slot.index });
  const send = (message: WorkerMessage) => process.send?.(message);
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    void started
      .then(() => relay.drain())
      .then(() => relay.close())
      .then(() => process.exit(0));
  };
  const relay = new Relay({ ...options, log, worker: options.slot, onDrainRequest: shutdown });
  // Worker 0 reports for the relay (POST /api/tlsrpt/send reaches it); the others' sessions go there.
  if (options.slot.index > 0)
    relay.tlsReports.forward = (attempt, at) => send({ type: 'tlsrpt', sessions: [{ attempt, at }] });
  const retire = () => {
    if (stopping) return;
    stopping = true;
    // No handoff: the queue stays in the shard, which worker 0 adopts once this process exited.
    void started.then(() => relay.close()).then(() => process.exit(0));
  };
  process.on('message', (message: PrimaryMessage) => {
    if (message.type === 'drain') shutdown();
    else if (message.type === 'retire') retire();
    else if (message.type === 'workers') void relay.setWorkerCount(message.count);
    else if (message.type === 'suppression') void relay.suppression.list.applyShared(message.changes);
    else if (message.type === 'tlsrpt')
      for (const s of message.sessions) relay.tlsReports.record(s.attempt, s.at);
    else
      void answer(relay, message.request).then(
        (response) => send({ type: 'response', id: message.id, response }),
        (err: unknown) =>
          send({ type: 'response', id: message.id, response: { status: 500, body: { error: String(err) } } }),
      );
  });
  // The primary is the pod's process: a signal that reaches a worker too (Ctrl-C) drains it alike.
  drainOnSignals(log, shutdown);
  // The primary going away (killed) leaves a worker nobody restarts or scrapes: it drains and goes.
  process.on('disconnect', shutdown);
  const started = relay.start();
  await started;
  const publish = relay.suppression.list.changed;
  relay.suppression.list.changed = (changes) => {
    publish?.(changes);
    send({ type: 'suppression', changes: [...changes] });
  };
  send({
    type: 'started',
    ports: relay.ports,
    routes: relay.adminRoutes.map((r) => ({
      method: r.method,
      pattern: r.pattern.source,
      access: r.access,
      ...(r.action ? { action: r.action } : {}),
    })),
  });
}

async function answer(relay: Relay, request: WorkerRequest): Promise<WorkerResponses[typeof request.kind]> {
  switch (request.kind) {
    case 'ready':
      return relay.notReadyReasons();
    case 'metrics':
      return relay.metrics.registry.getMetricsAsJSON();
    case 'adopt':
      return relay.adoptShards(request.from);
    case 'admin': {
      const url = new URL(request.url, 'http://localhost');
      // The route handlers read a request body as a stream (the suppression import is line by line).
      const body = Readable.from([request.body]) as unknown as IncomingMessage;
      return collected(await runRoute(relay.adminRoutes, request.method, url, body));
    }
  }
}

/** A streamed reply body (the suppression export) read whole: IPC carries one message. */
async function collected(reply: Reply): Promise<Reply> {
  const body = reply.body;
  if (typeof body !== 'object' || body === null || !(Symbol.asyncIterator in body)) return reply;
  let text = '';
  for await (const piece of body as AsyncIterable<string>) text += piece;
  return { ...reply, body: text };
}
