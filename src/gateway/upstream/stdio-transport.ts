import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { invalidMessageReason, type JsonRpcMessage } from '../../jsonrpc.js';
import type { UpstreamTransport } from './transport.js';

export interface StdioSpawnOptions {
  command: string;
  args: string[];
  cwd: string;
  /** The complete environment of the child: nothing else is inherited. */
  env: Record<string, string>;
  /** Run the child as this OS user/group (the gateway must be allowed to). */
  uid?: number;
  gid?: number;
  onStderr?: (line: string) => void;
  maxLineBytes?: number;
  /** A private working directory created for this child, removed when it ends. */
  removeCwdOnClose?: boolean;
}

/**
 * A stdio MCP client transport written here rather than taken from the SDK
 * because the SDK's always merges a default set of the parent's environment
 * variables into the child's; the boundary needs the child's environment to
 * be exactly the allow-list. The child gets three pipes and nothing else
 * (Node opens every other descriptor close-on-exec), no shell, and its own
 * working directory.
 */
export class StdioClientTransport implements UpstreamTransport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JsonRpcMessage) => void;
  private child?: ChildProcessByStdio<Writable, Readable, Readable>;
  private pending = '';
  private closed = false;

  constructor(private readonly options: StdioSpawnOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.command, this.options.args, {
        cwd: this.options.cwd,
        env: this.options.env,
        ...(this.options.uid !== undefined ? { uid: this.options.uid } : {}),
        ...(this.options.gid !== undefined ? { gid: this.options.gid } : {}),
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        windowsHide: true,
      });
      this.child = child;
      child.once('error', (err) => {
        if (!this.closed) this.onerror?.(err);
        reject(err);
        this.finish();
      });
      child.once('spawn', () => resolve());
      child.once('exit', () => this.finish());
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => this.onData(chunk));
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) if (line.trim()) this.options.onStderr?.(line.slice(0, 500));
      });
      child.stdin.on('error', () => this.finish());
    });
  }

  private onData(chunk: string): void {
    this.pending += chunk;
    const max = this.options.maxLineBytes ?? 16 * 1024 * 1024;
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        this.onerror?.(new Error('upstream wrote a line that is not JSON'));
        continue;
      }
      const bad = invalidMessageReason(msg);
      if (bad) {
        this.onerror?.(new Error(`upstream wrote an invalid JSON-RPC message: ${bad}`));
        continue;
      }
      this.onmessage?.(msg as JsonRpcMessage);
    }
    if (this.pending.length > max) {
      this.onerror?.(new Error('upstream message exceeds the size limit'));
      void this.close();
    }
  }

  send(message: JsonRpcMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.closed || !stdin.writable) return Promise.reject(new Error('stdio upstream is not running'));
    return new Promise((resolve, reject) => {
      stdin.write(`${JSON.stringify(message)}\n`, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.closed) return;
    child.stdin.end();
    // Ask politely, then insist: a wedged server must not outlive its session.
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 1000);
    const hard = setTimeout(() => child.kill('SIGKILL'), 3000);
    if (child.exitCode === null && child.signalCode === null) await exited;
    clearTimeout(timer);
    clearTimeout(hard);
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    // Best effort: a private temp folder left behind holds nothing of the gateway's, and the child is already gone.
    if (this.options.removeCwdOnClose) rm(this.options.cwd, { recursive: true, force: true }).catch(() => undefined);
    this.onclose?.();
  }
}
