// The file operations the spool uses, behind an interface so tests can inject write and fsync
// failures (and so nothing touches the disk at import time).
import { open, rename, unlink, readdir, readFile, mkdir, statfs, stat, rm } from 'node:fs/promises';

export interface SpoolFs {
  /** Create `path` (must not exist), write `data`, fsync it, close it. */
  writeDurable(path: string, data: Buffer): Promise<void>;
  /** Append to `path` (creating it); fsync when `durable`. */
  append(path: string, data: string, durable: boolean): Promise<void>;
  /** fsync a directory so renames and unlinks in it survive a crash. */
  syncDir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  mkdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  size(path: string): Promise<number>;
  freeBytes(path: string): Promise<number>;
}

export const nodeSpoolFs: SpoolFs = {
  async writeDurable(path, data) {
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
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
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  readdir: (path) => readdir(path),
  readFile: (path) => readFile(path),
  mkdir: async (path) => {
    await mkdir(path, { recursive: true });
  },
  remove: (path) => rm(path, { force: true }),
  size: async (path) => (await stat(path)).size,
  freeBytes: async (path) => {
    const s = await statfs(path);
    return s.bavail * s.bsize;
  },
};
