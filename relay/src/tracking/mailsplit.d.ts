// Types for the part of mailsplit (untyped on npm) that mime.ts uses.
declare module 'mailsplit' {
  import type { Transform } from 'node:stream';
  export interface MimeNode {
    type: 'node';
    headers: { update(key: string, value: string): void };
    contentType: string | false;
    disposition: string | false;
    charset: string | false;
    encoding: string | false;
    rfc822: boolean;
    parentNode: MimeNode | false | undefined;
  }
  export class Splitter extends Transform {}
  export class Joiner extends Transform {}
}

declare module 'libqp' {
  const libqp: {
    encode(buffer: Buffer): string;
    decode(text: string): Buffer;
    wrap(text: string, lineLength: number): string;
  };
  export default libqp;
}
