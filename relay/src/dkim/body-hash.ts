// The DKIM body hash (RFC 6376 §3.7, bh=) with relaxed body canonicalization (§3.4.4), computed
// over the message's bytes chunk by chunk: no string of the body, no copy of it, and chunks may
// split a line, a CRLF or a run of whitespace anywhere. canonicalize.ts's relaxedBody is the
// definition; the property test holds this to it byte for byte.
//
// Most of a body needs no change: a stretch of a chunk with no tab, no two spaces in a row and no
// space before a CR is its own canonical form (single spaces between words stay, CRLF line ends
// stay). Such a stretch is found with three native scans and hashed as it is. Only where a scan
// finds something, and at the ends of each chunk (where a line end or a whitespace run may
// continue in the next chunk, or be the body's trailing empty lines), do the bytes go one by one
// through the state machine below into a small scratch buffer that is hashed when full. What it
// saved against the string and regular expressions it replaced: docs/benchmarks.md, Figures
// behind code choices.
import { createHash, type Hash } from 'node:crypto';

const SP = 0x20;
const HT = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const TAB = Buffer.from('\t');
const TWO_SPACES = Buffer.from('  ');
const SPACE_CR = Buffer.from(' \r');
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);

/** Canonical bytes gathered before hashing (the hash call costs more than a few bytes). */
const SCRATCH_BYTES = 16 * 1024;
/**
 * One scratch buffer for every hash: update() and digest() are synchronous and leave it empty
 * (flushed into their hash) before they return, so hashes never see each other's bytes.
 */
const SCRATCH = Buffer.allocUnsafeSlow(SCRATCH_BYTES);

export class RelaxedBodyHash {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes of SCRATCH not hashed yet (0 between calls). */
  private used = 0;
  /** Whether any canonical byte was produced: an empty canonical body gets no final CRLF. */
  private produced = false;
  // Bytes held back because what follows decides them, in this order: CRLFs (empty lines, dropped
  // if nothing but line ends and whitespace follows to the end), a whitespace run (dropped before
  // a CRLF or at the end, else one space), a CR (a line end if an LF follows).
  private crlfs = 0;
  private wsp = false;
  private cr = false;

  update(chunk: Buffer): this {
    const end = chunk.length;
    let at = 0;
    // What was held back is decided by the first bytes here.
    if (this.holding()) {
      while (at < end && isSpaceOrLineEnd(chunk[at]!)) at++;
      if (at < end) at++; // the first other byte releases what is held
      this.run(chunk, 0, at);
    }
    // The end of the chunk from its last byte that is not whitespace or a line end: held back.
    let tail = end;
    while (tail > at && isSpaceOrLineEnd(chunk[tail - 1]!)) tail--;
    if (tail > at) {
      const middle = chunk.subarray(at, tail);
      if (middle.indexOf(TAB) < 0 && middle.indexOf(TWO_SPACES) < 0 && middle.indexOf(SPACE_CR) < 0) {
        this.flush();
        this.hash.update(middle);
        this.produced = true;
      } else this.run(chunk, at, tail);
    }
    this.run(chunk, tail, end);
    this.flush();
    return this;
  }

  /** bh= : the base64 SHA-256 of the canonical body. The hash cannot be updated after this. */
  digest(): string {
    // At the end a held CR is a bare one (kept, with the run before it as one space); held CRLFs
    // and a run before the end are dropped.
    if (this.cr) this.run(EMPTY, 0, 0, true);
    this.flush();
    if (this.produced) this.hash.update(CRLF);
    return this.hash.digest('base64');
  }

  private holding(): boolean {
    return this.crlfs > 0 || this.wsp || this.cr;
  }

  /**
   * Bytes `from` to `to` of `chunk` through the relaxed rules, into the scratch buffer; `release`
   * then writes out what is held back as it stands. One loop over local variables: this is the
   * per-byte path, taken where the native scans found something to change.
   */
  private run(chunk: Buffer, from: number, to: number, release = false): void {
    const out = SCRATCH;
    let used = this.used;
    let { crlfs, wsp, cr } = this;
    let produced = this.produced;
    for (let i = from; i <= to; i++) {
      let byte = -1;
      if (i < to) {
        byte = chunk[i]!;
        if (byte > SP && crlfs === 0 && !wsp && !cr) {
          // The common byte: nothing held, not whitespace or a line end.
          if (used === SCRATCH_BYTES) {
            this.hash.update(out.subarray(0, used));
            used = 0;
          }
          out[used++] = byte;
          produced = true;
          continue;
        }
        if (byte === CR && !cr) {
          cr = true;
          continue;
        }
        if (byte === LF && cr) {
          // A line end: the run before it goes, the line end waits (it may be a trailing one).
          cr = false;
          wsp = false;
          crlfs++;
          continue;
        }
        if ((byte === SP || byte === HT) && !cr) {
          wsp = true;
          continue;
        }
      } else if (!release) break;
      // Anything else decides what is held: written as it stands (CRLFs, the run as one space, a
      // bare CR), then the byte - a CR or a space after a bare CR is held in turn.
      if (crlfs > 0 || wsp || cr) {
        for (; crlfs > 0; crlfs--) {
          if (used + 2 > SCRATCH_BYTES) {
            this.hash.update(out.subarray(0, used));
            used = 0;
          }
          out[used++] = CR;
          out[used++] = LF;
        }
        if (used + 2 > SCRATCH_BYTES) {
          this.hash.update(out.subarray(0, used));
          used = 0;
        }
        if (wsp) out[used++] = SP;
        if (cr) out[used++] = CR;
        produced = true;
        wsp = false;
        cr = false;
      }
      if (byte === -1) break;
      if (byte === CR) cr = true;
      else if (byte === SP || byte === HT) wsp = true;
      else {
        if (used === SCRATCH_BYTES) {
          this.hash.update(out.subarray(0, used));
          used = 0;
        }
        out[used++] = byte;
        produced = true;
      }
    }
    this.used = used;
    this.crlfs = crlfs;
    this.wsp = wsp;
    this.cr = cr;
    this.produced = produced;
  }

  private flush(): void {
    if (this.used === 0) return;
    this.hash.update(SCRATCH.subarray(0, this.used));
    this.used = 0;
  }
}

function isSpaceOrLineEnd(byte: number): boolean {
  return byte === SP || byte === HT || byte === CR || byte === LF;
}
