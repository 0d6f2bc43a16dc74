// Measuring delivered rates: submitting a batch to one relay, and the steady rate of arrivals.
import { createTransport } from 'nodemailer';

/** Submits `count` messages to `to(i)` over 4 pooled connections; resolves when all got 250. */
export async function submitTo(port: number, count: number, to: (i: number) => string): Promise<void> {
  const transport = createTransport({
    host: '127.0.0.1',
    port,
    ignoreTLS: true,
    pool: true,
    maxConnections: 4,
  });
  try {
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        transport.sendMail({
          envelope: { from: 'a@example.com', to: [to(i)] },
          raw: `From: a@example.com\r\nTo: ${to(i)}\r\nSubject: ${i}\r\n\r\nbody ${i}\r\n`,
        }),
      ),
    );
  } finally {
    transport.close();
  }
}

/**
 * Messages per second: the slope of a least-squares line through (arrival time, count). Every
 * arrival weighs in, so a slow first delivery (a connection being opened) or a late last one
 * does not move the figure as it would a first-to-last quotient.
 */
export function steadyRate(times: readonly number[]): number {
  const n = times.length;
  const meanT = times.reduce((s, t) => s + t, 0) / n;
  const meanI = (n - 1) / 2;
  let num = 0;
  let den = 0;
  times.forEach((t, i) => {
    num += (t - meanT) * (i - meanI);
    den += (t - meanT) ** 2;
  });
  return (num / den) * 1000;
}
