// The relay benchmark's arithmetic, kept pure so it can be tested: the alternating order of runs,
// medians, ratios, and memory per in-flight message. run.ts measures; this decides what to print.

export type Server = 'mailfleet' | 'postfix';

/** One measured run of smtp-source against one server. */
export interface Run {
  workload: string;
  server: Server;
  round: number;
  messagesPerSecond: number;
  cpuMsPerMessage: number;
}

/** What was measured once per server and workload, besides the runs. */
export interface Extra {
  workload: string;
  server: Server;
  /** Proportional set size growth per message held in flight, KiB. */
  inFlightKiB: number;
  /** mailfleet only: V8 heap growth per in-flight message, KiB (Buffers are outside the heap). */
  inFlightHeapKiB?: number;
  /** The paced load's target (80 % of the median rate) and what the client achieved. */
  pacedTarget: number;
  pacedAchieved: number;
  acceptP50Ms: number;
  acceptP99Ms: number;
  /** Peak RSS (mailfleet) or summed RSS of the process tree (Postfix), MiB. */
  rssMiB: number;
}

export interface SummaryRow {
  workload: string;
  runs: number;
  postfix: ServerSummary;
  mailfleet: ServerSummary;
  /** Median mailfleet rate over median Postfix rate. */
  ratio: number;
}

export interface ServerSummary {
  messagesPerSecond: number;
  /** Every run's rate, in the order run. */
  rates: number[];
  cpuMsPerMessage: number;
  extra?: Extra;
}

/**
 * The servers in the order they run for one workload: mailfleet, Postfix, mailfleet, ... so
 * that a slow spell of the shared machine hits both, and neither always runs first after a pause.
 */
export function alternation(
  rounds: number,
  first: Server = 'mailfleet',
): { server: Server; round: number }[] {
  const second: Server = first === 'mailfleet' ? 'postfix' : 'mailfleet';
  return Array.from({ length: rounds }, (_, round) => [
    { server: first, round },
    { server: second, round },
  ]).flat();
}

/**
 * Every run of a whole benchmark in order: `sweeps` passes over the workloads, each workload one
 * alternation of `rounds` per pass, the server that goes first swapped from one sweep to the next
 * (a sweep's runs are minutes apart from the next sweep's, so a slow spell shows as one outlier
 * per server, which the median drops). Rounds are numbered across the sweeps.
 */
export function sweepOrder<W>(
  workloads: readonly W[],
  sweeps: number,
  rounds: number,
): { workload: W; server: Server; round: number; sweep: number }[] {
  return Array.from({ length: sweeps }, (_, sweep) =>
    workloads.flatMap((workload) =>
      alternation(rounds, sweep % 2 === 0 ? 'mailfleet' : 'postfix').map(({ server, round }) => ({
        workload,
        server,
        round: sweep * rounds + round,
        sweep,
      })),
    ),
  ).flat();
}

/** What the duration estimate needs of one workload: its message count and expected rates. */
export interface PlannedWorkload {
  count: number;
  /** Messages per second expected of each server (a quiet machine's figures). */
  rates: Record<Server, number>;
  /** Warm-up messages sent to each server before its first run. */
  warmUp: number;
  /** Fixed seconds around each run (pauses before it, delivery after it). */
  perRun: number;
  /** Seconds of the per-server memory and latency measurements after the runs (0: none). */
  extras: number;
}

/** Seconds a benchmark of these workloads should take with the rates given. */
export function estimateSeconds(
  workloads: readonly PlannedWorkload[],
  sweeps: number,
  rounds: number,
): number {
  return workloads.reduce((total, w) => {
    const servers = Object.values(w.rates);
    const runs = servers.reduce((a, rate) => a + w.count / rate + w.perRun, 0) * sweeps * rounds;
    const warm = servers.reduce((a, rate) => a + w.warmUp / rate, 0);
    return total + runs + warm + servers.length * w.extras;
  }, 0);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Per workload (in the order first run): medians per server and the ratio of the medians. */
export function summarize(runs: readonly Run[], extras: readonly Extra[] = []): SummaryRow[] {
  const workloads = [...new Set(runs.map((r) => r.workload))];
  return workloads.map((workload) => {
    const of = (server: Server): ServerSummary => {
      const mine = runs.filter((r) => r.workload === workload && r.server === server);
      const extra = extras.find((e) => e.workload === workload && e.server === server);
      return {
        messagesPerSecond: median(mine.map((r) => r.messagesPerSecond)),
        rates: mine.map((r) => r.messagesPerSecond),
        cpuMsPerMessage: median(mine.map((r) => r.cpuMsPerMessage)),
        ...(extra ? { extra } : {}),
      };
    };
    const postfix = of('postfix');
    const mailfleet = of('mailfleet');
    return {
      workload,
      runs: Math.min(postfix.rates.length, mailfleet.rates.length),
      postfix,
      mailfleet,
      ratio: mailfleet.messagesPerSecond / postfix.messagesPerSecond,
    };
  });
}

/** KiB per in-flight message from a memory figure (bytes) before and with `inFlight` messages held. */
export function perInFlightKiB(beforeBytes: number, duringBytes: number, inFlight: number): number {
  return (duringBytes - beforeBytes) / inFlight / 1024;
}

/** The message rate for the latency run: 80 % of the measured maximum (the median rate). */
export function pacedRate(medianRate: number): number {
  return 0.8 * medianRate;
}
