// smtp-server's DATA parser (SMTPStream._feedDataStream) looks for the end of data and for escape
// dots with a JavaScript loop over every byte of the message. This replaces that one method with
// the same steps, the search done by Buffer indexOf for "\n." (one native call per line that
// starts with a dot, and one per chunk): same output, same end-of-data rules, including the
// start-of-data terminator guard. The last 4 bytes of a chunk are kept as the original keeps them,
// but joined to the next chunk (a copy of it) only when a terminator or escape could span the two. Installed once, on
// SMTPStream's prototype; smtp-server is pinned to one version (internals.test.ts), and
// data-stream.test.ts pins this method to the original's output for any message and chunking.
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

const END_SEQUENCE = Buffer.from('\r\n.\r\n');
const DOT_CRLF = Buffer.from('.\r\n');
const LF_DOT = Buffer.from('\n.');
const LF = 0x0a;

/** The fields and methods of SMTPStream the method uses (all set by its constructor). */
interface Stream {
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _dataStream: (NodeJS.WritableStream & { writable: boolean; destroyed: boolean }) | null;
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: (err?: Error) => void): void;
  _feedDataStream(chunk: Buffer, done: (err?: Error) => void): void;
}

const proto = SMTPStream.prototype as unknown as Stream;
/** The original, for the equivalence test. */
export const originalFeedDataStream = proto._feedDataStream;

export function feedDataStream(this: Stream, input: Buffer, done: (err?: Error) => void): void {
  const dataStream = this._dataStream!;
  let chunk = input;
  const last = this._lastBytes;
  if (last && last.length) {
    this._lastBytes = false;
    if (!this._atDataStart && last.indexOf(LF) === -1 && chunk[0] !== LF) {
      // The bytes kept from the last chunk hold no LF and the chunk does not start with one (a
      // CR they end in ends no line then): no end of data or escape dot can span the two, so
      // they go out as they are and the chunk is searched alone, not copied behind them (64 KB
      // per socket read).
      this._countDataBytes(last.length);
      if (dataStream.writable) dataStream.write(last);
    } else chunk = Buffer.concat([last, chunk], last.length + chunk.length);
  }
  let len = chunk.length;
  if (this._atDataStart && len >= 3 && chunk.subarray(0, 3).equals(DOT_CRLF)) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  // The original tests every i in [2, len - 3] for a dot after LF: "\n." at i - 1.
  for (let lf = chunk.indexOf(LF_DOT, 1); lf !== -1 && lf < len - 3; lf = chunk.indexOf(LF_DOT, lf + 1)) {
    const i = lf + 1;
    if (chunk.subarray(i - 2, i + 3).equals(END_SEQUENCE)) {
      const buf = chunk.subarray(0, i);
      this._countDataBytes(buf.length);
      this._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    if (chunk[i + 1] === 0x2e) {
      const buf = chunk.subarray(0, i);
      this._lastBytes = false;
      this._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  if (this._lastBytes.length >= chunk.length) return done();
  const buf = chunk.subarray(0, chunk.length - this._lastBytes.length);
  this._countDataBytes(buf.length);
  if (!dataStream.writable) return done();
  const handled = dataStream.write(buf);
  if (handled || dataStream.destroyed) return done();
  // A stream that the application destroys never drains, it only closes.
  const onDrain = () => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
}

proto._feedDataStream = feedDataStream;
