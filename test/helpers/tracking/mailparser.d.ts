// Types for the part of mailparser (untyped on npm) the tracking and TLS report tests use.
declare module 'mailparser' {
  export interface ParsedAttachment {
    contentType: string;
    filename?: string;
    content: Buffer;
  }
  export interface ParsedMail {
    html: string | false;
    text?: string;
    attachments: ParsedAttachment[];
    subject?: string;
    /** Lower-case header names. */
    headers: Map<string, unknown>;
  }
  export function simpleParser(
    source: Buffer | string,
    options?: { skipHtmlToText?: boolean },
  ): Promise<ParsedMail>;
}
