// Types for the part of mailparser (untyped on npm) the tracking tests use.
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
  }
  export function simpleParser(
    source: Buffer | string,
    options?: { skipHtmlToText?: boolean },
  ): Promise<ParsedMail>;
}
