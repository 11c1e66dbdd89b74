import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { CompiledPolicy } from './policy.js';

export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; problems: string[] };

/**
 * Holds the policy in force. A reload compiles the new policy completely
 * before swapping one reference, so every decision sees either the old or
 * the new policy, never a mix; a broken file is rejected and the old policy
 * keeps serving.
 */
export class PolicyHolder {
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;

  constructor(
    private policy: CompiledPolicy,
    private readonly load: () => CompiledPolicy,
    private readonly onReload: (r: ReloadResult) => void = () => {},
  ) {}

  get current(): CompiledPolicy {
    return this.policy;
  }

  reload(): ReloadResult {
    let result: ReloadResult;
    try {
      const next = this.load();
      const changed = next.version !== this.policy.version;
      this.policy = next;
      result = { ok: true, version: next.version, changed };
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      result = { ok: false, problems };
    }
    this.onReload(result);
    return result;
  }

  /**
   * Watches the policy file's folder, not the file: editors and config
   * management replace files by rename, which a watch on the old inode misses.
   * Bursts of events (write, then rename) settle into one reload.
   */
  watchFile(path: string, settleMs = 100): void {
    const name = basename(path);
    this.watcher = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), settleMs);
    });
    this.watcher.on('error', () => {});
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
