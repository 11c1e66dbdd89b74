import { execFile } from 'node:child_process';
import { BehalfError } from '../errors.js';
import type { CredentialSource } from './profile.js';
import type { Redactor } from './redactor.js';

/**
 * Why a credential could not be had; neither the message nor a cause carries
 * the command's output (it may hold a token).
 */
export class CredentialError extends BehalfError {
  constructor(message: string) {
    super('credential_command_failed', message);
    this.name = 'CredentialError';
  }
}

const COMMAND_TIMEOUT_MS = 20_000;

/**
 * Headers for one credential source. A command runs each time it is asked
 * (fresh tokens), through the shell, from the profile's folder. Every header
 * value is registered with the redactor before anything else sees it.
 */
export async function resolveHeaders(source: CredentialSource, dir: string, redactor: Redactor): Promise<Record<string, string>> {
  const headers = source.headers ? { ...source.headers } : parseCommandOutput(await runCommand(source.command!, dir));
  for (const v of Object.values(headers)) redactor.add(v);
  return lowerKeys(headers);
}

function runCommand(command: string, cwd: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile('/bin/sh', ['-c', command], { cwd, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 1024 * 1024, env: process.env }, (err, stdout) => {
      if (err) reject(new CredentialError(`credential command failed (${(err as NodeJS.ErrnoException & { code?: unknown }).code ?? 'error'}): ${command.split(/\s+/).slice(0, 3).join(' ')}…`));
      else resolvePromise(stdout);
    });
  });
}

export function parseCommandOutput(out: string): Record<string, string> {
  const text = out.trim();
  if (!text) throw new CredentialError('credential command printed nothing');
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // The parser's message quotes the output, which may be a token: it is not kept.
      throw new CredentialError('credential command printed invalid JSON');
    }
    const o = json as Record<string, unknown>;
    if (o.headers && typeof o.headers === 'object') return stringRecord(o.headers as Record<string, unknown>);
    if (typeof o.access_token === 'string') return { authorization: `Bearer ${o.access_token}` };
    return stringRecord(o);
  }
  const lines = text.split(/\r?\n/).filter(Boolean);
  if (lines.every((l) => /^[A-Za-z0-9-]+:\s*\S/.test(l))) {
    return Object.fromEntries(lines.map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()];
    }));
  }
  if (lines.length === 1 && !/\s/.test(text)) return { authorization: `Bearer ${text}` };
  throw new CredentialError('credential command output is neither JSON, header lines nor a single token');
}

function stringRecord(o: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') out[k] = v;
  if (!Object.keys(out).length) throw new CredentialError('credential command printed no headers');
  return out;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

/** The bearer token in a header set, if any. */
export function bearerOf(headers: Record<string, string>): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')?.[1];
}
