// The file operations the spool uses, behind an interface so tests can inject write and fsync
// failures (and so nothing touches the disk at import time).
import { open, rename, unlink, readdir, readFile, mkdir, statfs, stat, writeFile } from 'node:fs/promises';
import {
  appendFileSync,
  closeSync,
  constants,
  fstat,
  fsync,
  open as fsOpen,
  openSync,
  read,
  renameSync,
  writev,
  writevSync,
  writeSync,
  type Stats,
} from 'node:fs';

/** Writes all of `bytes` at the descriptor's position: writeSync may write less than asked. */
export function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
}

/**
 * Batches up to this size are written on the event loop; bigger ones on the thread pool. A small
 * write to the page cache takes microseconds, less than a trip through the pool; a batch of
 * megabytes takes milliseconds (more when the kernel throttles dirty pages), and written on the
 * event loop it held every session's reads and replies meanwhile.
 */
const SYNC_WRITE_MAX_BYTES = 256 * 1024;

/** The parts after the first `written` bytes (a vectored write may write less than asked). */
export function unwritten(parts: readonly Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const part of parts) {
    if (written >= part.length) written -= part.length;
    else {
      rest.push(written > 0 ? part.subarray(written) : part);
      written = 0;
    }
  }
  return rest;
}

/** Writes every byte of `parts` in order at the descriptor's position, in vectored writes. */
async function writePartsAll(fd: number, parts: readonly Buffer[], size: number): Promise<void> {
  let rest = unwritten(parts, 0);
  let left = size;
  while (left > 0) {
    const n =
      size <= SYNC_WRITE_MAX_BYTES
        ? writevSync(fd, rest)
        : await new Promise<number>((resolve, reject) =>
            writev(fd, rest, (err, written) => (err ? reject(err) : resolve(written))),
          );
    left -= n;
    rest = unwritten(rest, n);
  }
}

export interface SpoolFs {
  /**
   * Create `path` (must not exist) and write `parts` in order (`size` bytes in all), without
   * fsync; resolves to the open descriptor. Up to SYNC_WRITE_MAX_BYTES the write is synchronous
   * (a 2 KB write to the page cache takes microseconds, while a trip through the thread pool costs
   * more than the write and queues behind fsyncs); bigger batches go through the thread pool.
   */
  createFile(path: string, parts: readonly Buffer[], size: number): Promise<number>;
  /** Create `path` (must not exist) for writing; returns its descriptor (a streamed batch). */
  createEmpty(path: string): number;
  /**
   * Write `parts` in order (`size` bytes in all) at the descriptor's position, without fsync;
   * synchronous up to SYNC_WRITE_MAX_BYTES like createFile, else on the thread pool.
   */
  writeParts(fd: number, parts: readonly Buffer[], size: number): Promise<void>;
  /** fsync an open file; the one slow step, run on the thread pool. */
  syncFile(fd: number): Promise<void>;
  closeFile(fd: number): void;
  /** Create or replace `path` with `data`, without fsync; synchronous like createFile. */
  replaceFile(path: string, data: Buffer): void;
  /** fsync a file by name (a message copy made durable when its batch is retired). */
  syncPath(path: string): Promise<void>;
  renameSync(from: string, to: string): void;
  /**
   * Append to `path` (creating it), without fsync: a marker that must survive the process, not
   * the machine. Synchronous for the same reason as createFile.
   */
  appendSync(path: string, data: string): void;
  /** Append to `path` (creating it); fsync when `durable`. */
  append(path: string, data: string, durable: boolean): Promise<void>;
  /**
   * Open `path` (created if missing) for appends, without fsync; returns the descriptor. For a
   * log written many times (a batch's done log): each append is then one write, not an open,
   * a write and a close.
   */
  openAppend(path: string): number;
  /** Append `data` through a descriptor from openAppend, synchronously like appendSync. */
  appendFd(fd: number, data: string): void;
  /** fsync a directory so renames and unlinks in it survive a crash. */
  syncDir(path: string): Promise<void>;
  /**
   * Open a directory to fsync it many times (the journal's, at every commit) without an open and
   * a close each time; closeFile closes it.
   */
  openDir(path: string): number;
  /** fsync a directory opened by openDir. */
  syncDirFd(fd: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  /** Up to `length` bytes at `offset` (fewer if the file is shorter). */
  readRange(path: string, offset: number, length: number): Promise<Buffer>;
  /** Opens a file to read from (positioned reads, readAt); its size. Closed with closeFile. */
  openRead(path: string): Promise<{ fd: number; size: number }>;
  /**
   * Up to `length` bytes at `position` of an open file (fewer at its end), in a new Buffer or in
   * `into` (at least `length` long), which a pass that only looks at the bytes reuses.
   */
  readAt(fd: number, length: number, position: number, into?: Buffer): Promise<Buffer>;
  writeFile(path: string, data: Buffer): Promise<void>;
  mkdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  size(path: string): Promise<number>;
  freeBytes(path: string): Promise<number>;
}

export const nodeSpoolFs: SpoolFs = {
  async createFile(path, parts, size) {
    const fd = openSync(path, 'wx');
    try {
      await writePartsAll(fd, parts, size);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return fd;
  },
  createEmpty: (path) => openSync(path, 'wx'),
  writeParts: (fd, parts, size) => writePartsAll(fd, parts, size),
  syncFile: (fd) => new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve()))),
  closeFile: (fd) => closeSync(fd),
  replaceFile(path, data) {
    const fd = openSync(path, 'w');
    try {
      writeAllSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
  async syncPath(path) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  renameSync: (from, to) => renameSync(from, to),
  appendSync: (path, data) => appendFileSync(path, data),
  openAppend: (path) => openSync(path, 'a'),
  appendFd: (fd, data) => writeAllSync(fd, Buffer.from(data)),
  async append(path, data, durable) {
    const handle = await open(path, 'a');
    try {
      await handle.appendFile(data);
      if (durable) await handle.datasync();
    } finally {
      await handle.close();
    }
  },
  async syncDir(path) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  openDir: (path) => openSync(path, constants.O_RDONLY | constants.O_DIRECTORY),
  syncDirFd: (fd) => new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve()))),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  readdir: (path) => readdir(path),
  readFile: (path) => readFile(path),
  async readRange(path, offset, length) {
    const handle = await open(path, 'r');
    try {
      // Not zero-filled first (a megabyte per big message read back): only the bytes read are kept.
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  },
  async openRead(path) {
    const fd = await new Promise<number>((resolve, reject) =>
      fsOpen(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd))),
    );
    try {
      const { size } = await new Promise<Stats>((resolve, reject) =>
        fstat(fd, (err, stats) => (err ? reject(err) : resolve(stats))),
      );
      return { fd, size };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  },
  readAt: (fd, length, position, into) =>
    new Promise((resolve, reject) => {
      // Not zero-filled: only the bytes read are kept.
      const buffer = into ?? Buffer.allocUnsafe(length);
      read(fd, buffer, 0, length, position, (err, bytesRead) =>
        err ? reject(err) : resolve(buffer.subarray(0, bytesRead)),
      );
    }),
  writeFile: (path, data) => writeFile(path, data),
  mkdir: async (path) => {
    await mkdir(path, { recursive: true });
  },
  // unlink, not rm({force}): rm lstat()s first, a measurable cost at thousands of messages a second.
  remove: (path) =>
    unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    }),
  size: async (path) => (await stat(path)).size,
  freeBytes: async (path) => {
    const s = await statfs(path);
    return s.bavail * s.bsize;
  },
};
