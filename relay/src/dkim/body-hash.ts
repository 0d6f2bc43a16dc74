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
// through the state machine below into a small scratch buffer that is hashed when full.
import { createHash, type Hash } from 'node:crypto';

const SP = 0x20;
const HT = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const TAB = Buffer.from('\t');
const TWO_SPACES = Buffer.from('  ');
const SPACE_CR = Buffer.from(' \r');
const CRLF = Buffer.from('\r\n');

/** Canonical bytes gathered before hashing (the hash call costs more than a few bytes). */
const SCRATCH_BYTES = 16 * 1024;

export class RelaxedBodyHash {
  private readonly hash: Hash = createHash('sha256');
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** Bytes of `scratch` not hashed yet. */
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
    while (at < end && this.holding()) this.step(chunk[at++]!);
    // The end of the chunk from its last byte that is not whitespace or a line end: held back.
    let tail = end;
    while (tail > at && isSpaceOrLineEnd(chunk[tail - 1]!)) tail--;
    if (tail > at) {
      const middle = chunk.subarray(at, tail);
      if (middle.indexOf(TAB) < 0 && middle.indexOf(TWO_SPACES) < 0 && middle.indexOf(SPACE_CR) < 0) {
        this.flush();
        this.hash.update(middle);
        this.produced = true;
      } else for (let i = at; i < tail; i++) this.step(chunk[i]!);
    }
    for (let i = tail; i < end; i++) this.step(chunk[i]!);
    this.flush();
    return this;
  }

  /** bh= : the base64 SHA-256 of the canonical body. The hash cannot be updated after this. */
  digest(): string {
    // At the end a held CR is a bare one (kept, with the run before it as one space); held CRLFs
    // and a run before the end are dropped.
    if (this.cr) this.release();
    this.flush();
    if (this.produced) this.hash.update(CRLF);
    return this.hash.digest('base64');
  }

  private holding(): boolean {
    return this.crlfs > 0 || this.wsp || this.cr;
  }

  /** One byte through the relaxed rules. */
  private step(byte: number): void {
    if (byte === SP || byte === HT) {
      if (this.cr) this.release(); // a bare CR: kept, and a run starts after it
      this.wsp = true;
    } else if (byte === CR) {
      if (this.cr) this.release();
      this.cr = true;
    } else if (byte === LF) {
      if (this.cr) {
        // A line end: the run before it goes, the line end waits (it may be a trailing one).
        this.cr = false;
        this.wsp = false;
        this.crlfs++;
      } else {
        this.release();
        this.put(LF);
      }
    } else {
      this.release();
      this.put(byte);
    }
  }

  /** Writes what was held back as it stands: its line ends, its run as one space, its CR. */
  private release(): void {
    for (; this.crlfs > 0; this.crlfs--) {
      this.put(CR);
      this.put(LF);
    }
    if (this.wsp) this.put(SP);
    if (this.cr) this.put(CR);
    this.wsp = false;
    this.cr = false;
  }

  private put(byte: number): void {
    if (this.used === SCRATCH_BYTES) this.flush();
    this.scratch[this.used++] = byte;
    this.produced = true;
  }

  private flush(): void {
    if (this.used === 0) return;
    this.hash.update(this.scratch.subarray(0, this.used));
    this.used = 0;
  }
}

function isSpaceOrLineEnd(byte: number): boolean {
  return byte === SP || byte === HT || byte === CR || byte === LF;
}
