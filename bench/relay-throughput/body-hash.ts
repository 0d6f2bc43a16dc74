// The DKIM body hash (bh=) of a 100 KB and a 1 MB body, three ways: the whole body as a latin1
// string through canonicalize.ts's regular expressions (what the signer did before body-hash.ts),
// body-hash.ts over the Buffer, and a plain SHA-256 of the bytes (the floor). CPU time per body
// and the V8 heap allocated per body (the garbage a signature leaves). Two bodies: smtp-source's
// (lines of one letter, what the relay benchmarks send) and HTML with indentation and tabs (most
// lines go through the byte-by-byte path). Not a test: it asserts nothing.
//
// Usage: scripts/node24.sh node --expose-gc bench/relay-throughput/body-hash.ts
import { createHash } from 'node:crypto';
import { RelaxedBodyHash } from '../../relay/src/dkim/body-hash.ts';
import { relaxedBody } from '../../relay/src/dkim/canonicalize.ts';

function body(kind: 'letters' | 'html', size: number): Buffer {
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < size; i++) {
    const line =
      kind === 'letters'
        ? 'X'.repeat(72)
        : `${'  '.repeat(i % 6)}<td class="cell">\tItem ${i}  price <b>${i * 3}</b> </td>`;
    lines.push(line);
    bytes += line.length + 2;
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}

const ways: Record<string, (b: Buffer) => string> = {
  'string + regular expressions (before)': (b) =>
    createHash('sha256')
      .update(relaxedBody(b.toString('latin1')), 'latin1')
      .digest('base64'),
  'body-hash.ts over the Buffer (after)': (b) => new RelaxedBodyHash().update(b).digest(),
  'sha256 of the bytes, no canonicalization': (b) => createHash('sha256').update(b).digest('base64'),
};

const gc = (globalThis as { gc?: () => void }).gc;
const rows: string[] = [];
for (const size of [100 * 1024, 1024 * 1024])
  for (const kind of ['letters', 'html'] as const) {
    const b = body(kind, size);
    const runs = Math.max(20, Math.round((200 * 1024 * 1024) / size / 10));
    for (const [name, hash] of Object.entries(ways)) {
      for (let i = 0; i < 5; i++) hash(b); // warm-up
      gc?.();
      const cpuBefore = process.cpuUsage();
      let heapAllocated = 0;
      for (let i = 0; i < runs; i++) {
        const h0 = process.memoryUsage().heapUsed;
        hash(b);
        heapAllocated += Math.max(0, process.memoryUsage().heapUsed - h0);
      }
      const cpu = process.cpuUsage(cpuBefore);
      rows.push(
        `| ${size / 1024} KB | ${kind} | ${name} | ${((cpu.user + cpu.system) / 1000 / runs).toFixed(3)} | ${(heapAllocated / runs / 1024).toFixed(0)} |`,
      );
    }
  }
process.stdout.write(
  [
    `DKIM body hash per body (${gc ? 'with' : 'without'} --expose-gc; heap growth per call, KiB, is 0 when a GC ran during it)`,
    '| body | lines | way | CPU ms | V8 heap KiB |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
