// What DKIM signing needs of a message, gathered from its bytes as they pass, in one Buffer or in
// chunks read from the spool: the header block (up to and with the first empty line, which may be
// split between chunks anywhere) kept, and the body after it only hashed (body-hash.ts), so a big
// message is never held whole. A message without an empty line is all header, as signing a
// message in one Buffer takes it: its bytes are kept until the end.
import { RelaxedBodyHash } from './body-hash.ts';

const EMPTY_LINE = Buffer.from('\r\n\r\n');

/** The header block and the body hash (bh=) of a message. */
export interface SigningParts {
  header: Buffer;
  bodyHash: string;
}

export class SigningInput {
  /** The header block's bytes so far; complete once `inBody`. */
  private readonly headerParts: Buffer[] = [];
  /** The last (up to 3) header bytes, where the empty line may have begun in an earlier chunk. */
  private seam: Buffer = Buffer.alloc(0);
  /** The empty line has passed: every byte from here on is body. */
  private inBody = false;
  private readonly bodyHash = new RelaxedBodyHash();

  push(chunk: Buffer): void {
    if (this.inBody) {
      this.bodyHash.update(chunk);
      return;
    }
    // The header's bytes are copied: a chunk may be a buffer its reader fills again (transient).
    const end = this.headerEnd(chunk);
    if (end === -1) {
      this.headerParts.push(Buffer.from(chunk));
      this.seam = Buffer.concat([this.seam, chunk.subarray(-3)]).subarray(-3);
      return;
    }
    this.headerParts.push(Buffer.from(chunk.subarray(0, end)));
    this.inBody = true;
    this.bodyHash.update(chunk.subarray(end));
  }

  /** The header block once its empty line has passed (the key can be chosen), else undefined. */
  header(): Buffer | undefined {
    return this.inBody ? this.joinedHeader() : undefined;
  }

  /** After the last chunk: the header block (the whole message if it has no empty line) and bh=. */
  end(): SigningParts {
    return { header: this.joinedHeader(), bodyHash: this.bodyHash.digest() };
  }

  /** Where in `chunk` the header block ends (after the first CRLFCRLF of the message), or -1. */
  private headerEnd(chunk: Buffer): number {
    if (this.seam.length > 0) {
      const across = Buffer.concat([this.seam, chunk.subarray(0, 3)]).indexOf(EMPTY_LINE);
      if (across !== -1) return across + EMPTY_LINE.length - this.seam.length;
    }
    const within = chunk.indexOf(EMPTY_LINE);
    return within === -1 ? -1 : within + EMPTY_LINE.length;
  }

  private joinedHeader(): Buffer {
    if (this.headerParts.length !== 1) {
      const joined = Buffer.concat(this.headerParts);
      this.headerParts.length = 0;
      this.headerParts.push(joined);
    }
    return this.headerParts[0]!;
  }
}
