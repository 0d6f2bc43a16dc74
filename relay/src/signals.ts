// The pod's stop signals: SIGTERM (the kubelet) and SIGINT start the drain once. Its own module, so
// the primary process of worker processes (relay/src/workers/primary.ts) loads no relay code.
import type { Logger } from '../../contract/log.ts';

/** SIGTERM and SIGINT start `shutdown`, once; it drains, closes and exits. */
export function drainOnSignals(log: Logger, shutdown: () => void): void {
  let received = false;
  const onSignal = (signal: string) => {
    if (received) return;
    received = true;
    log('info', 'signal received, draining', { signal });
    shutdown();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
