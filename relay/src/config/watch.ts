// Watching the config file and the files it references. Polls stat() once a second (interval is
// configurable for tests): Kubernetes updates ConfigMap and Secret volumes by swapping a symlink,
// which inotify watches on the file itself miss, while a stat of the path always sees it.
import { stat } from 'node:fs/promises';

export class FileWatcher {
  private readonly onChange: () => void;
  private readonly intervalMs: number;
  /** Last seen "mtime:size:ino" per path; '' when the file is missing. */
  private readonly seen = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(onChange: () => void, intervalMs = 1000) {
    this.onChange = onChange;
    this.intervalMs = intervalMs;
  }

  async watch(paths: readonly string[]): Promise<void> {
    this.seen.clear();
    for (const path of paths) this.seen.set(path, await signature(path));
    if (!this.timer) {
      this.timer = setInterval(() => void this.check(), this.intervalMs);
      this.timer.unref();
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      let changed = false;
      for (const [path, before] of this.seen) {
        const now = await signature(path);
        if (now !== before) {
          this.seen.set(path, now);
          changed = true;
        }
      }
      if (changed) this.onChange();
    } finally {
      this.checking = false;
    }
  }
}

async function signature(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return '';
  }
}
