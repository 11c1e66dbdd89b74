import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { basename, resolve } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import type { AuditEvent } from '../audit/event.js';
import { resolveAuditPath } from '../audit/path.js';
import { SqliteAuditStore } from '../audit/sqlite-store.js';
import { loadConfigFile } from '../config/load.js';
import { BehalfError } from '../errors.js';
import { generateApiKey, hashApiKey } from '../identity/api-keys.js';
import {
  DAY_MS, DEFAULT_AGE_POLICY, duration, isoTime, keyState, keyWarnings, type KeyAgePolicy, type KeyLifecycle,
} from '../keys/lifecycle.js';
import { keyChangeEvent } from '../keys/key-event.js';
import { configKeyLifecycles, keyStorePath } from '../keys/ring.js';
import { KeyId, privateKeyPath, readKeyStore, storedLifecycle, updateKeyStore, type KeyStoreDoc, type StoredKey } from '../keys/store.js';
import { parse } from './args.js';

const USAGE = `usage: behalf keys COMMAND
  generate                          a new API key and its hash, for clients[].apiKeys in the config (static form)
  hash                              the sha256: hash of a key read on stdin
  create --client ID [--id ID] [--not-before DATE] [--not-after DATE | --days N]
                                    a managed API key: printed once on stdout, only its hash is stored
  create --signing [--id ID] [--not-before DATE] [--not-after DATE | --days N]
                                    a gateway signing key (ES256); its private JWK goes to a 0600 file next to the store
  list [--json]                     every key: id, kind, client, dates, status, age; WARN near expiry or max age
  rotate --id OLD [--overlap-days N] [--not-after DATE | --days N]
                                    a successor of OLD (printed once); OLD stays valid N more days (default 7)
  revoke --id ID [--reason TEXT]    refused by a running gateway from its next request on
create, list, rotate and revoke take the key store as
  --config FILE                     the gateway config: keys.file, keys.maxAgeDays/warnBeforeDays, audit.sqlitePath
  --store FILE [--audit PATH] [--max-age-days N] [--warn-before-days N]
create, rotate and revoke append a 'key' record to the audit trail (--audit PATH, or the config's).
A new key expires after keys.maxAgeDays (default 90) unless --days or --not-after says otherwise.`;

const SOURCE = {
  store: { type: 'string' }, config: { type: 'string', short: 'c' }, audit: { type: 'string' },
  'max-age-days': { type: 'string' }, 'warn-before-days': { type: 'string' },
} as const;
const VALIDITY = { 'not-before': { type: 'string' }, 'not-after': { type: 'string' }, days: { type: 'string' } } as const;
const DEFAULT_OVERLAP_DAYS = 7;

/** `behalf keys …`: managed client API keys and gateway signing keys. */
export async function keysCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'generate': return generate(rest);
    case 'hash': return hash(rest);
    case 'create': return create(rest);
    case 'list': return list(rest);
    case 'rotate': return rotate(rest);
    case 'revoke': return revoke(rest);
    case 'help': case '--help': case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default: throw usage(sub === undefined ? 'a subcommand is required' : `unknown subcommand ${sub}`);
  }
}

function usage(problem: string): BehalfError {
  return new BehalfError('invalid_request', `${problem}\n${USAGE}`);
}

/** A refusal about the keys themselves (no such key, already revoked…): no usage text. */
function fail(problem: string): BehalfError {
  return new BehalfError('invalid_request', problem);
}

function generate(argv: string[]): void {
  parse(argv, {});
  const key = generateApiKey();
  out({ key, hash: hashApiKey(key), note: 'store the key in the client\'s secret store; put only the hash in the gateway config (or use behalf keys create with a key store)' });
}

async function hash(argv: string[]): Promise<void> {
  parse(argv, {});
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const key = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!key) throw usage('hash reads the key on stdin');
  out({ hash: hashApiKey(key) });
}

interface KeysContext {
  storePath: string;
  policy: KeyAgePolicy;
  auditPath?: string;
  /** Clients the config declares (with --config). */
  clients?: Set<string>;
  /** The config's static keys (with --config). */
  configKeys: KeyLifecycle[];
}

function context(values: { store?: string; config?: string; audit?: string; 'max-age-days'?: string; 'warn-before-days'?: string }): KeysContext {
  if (values.store && values.config) throw usage('give --store or --config, not both');
  const override = (p: KeyAgePolicy): KeyAgePolicy => ({
    maxAgeDays: values['max-age-days'] === undefined ? p.maxAgeDays : days(values['max-age-days'], '--max-age-days', false),
    warnBeforeDays: values['warn-before-days'] === undefined ? p.warnBeforeDays : days(values['warn-before-days'], '--warn-before-days', true),
  });
  if (values.config) {
    const { config, baseDir } = loadConfigFile(values.config);
    const storePath = keyStorePath(config, baseDir);
    if (!storePath) throw fail(`${values.config} names no key store: add keys: { file: keys.json }`);
    const auditPath = values.audit ?? (config.audit.sqlitePath === ':memory:' ? undefined : resolveAuditPath(config.audit.sqlitePath, baseDir));
    return {
      storePath, auditPath, policy: override(config.keys),
      clients: new Set(config.clients.map((c) => c.id)),
      configKeys: configKeyLifecycles(config).map((c) => c.lifecycle),
    };
  }
  if (!values.store) throw usage('the key store is required: --store FILE or --config FILE');
  return { storePath: resolve(values.store), auditPath: values.audit && resolve(values.audit), policy: override(DEFAULT_AGE_POLICY), configKeys: [] };
}

// ---- create ---------------------------------------------------------------

async function create(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...SOURCE, ...VALIDITY, client: { type: 'string' }, signing: { type: 'boolean' }, id: { type: 'string' } });
  if (Boolean(values.signing) === Boolean(values.client)) throw usage('create needs --client ID (an API key) or --signing (a gateway signing key)');
  const ctx = context(values);
  const now = Date.now();
  const notBefore = time(values['not-before'], '--not-before') ?? now;
  const notAfter = expiry(values, notBefore, ctx.policy);
  const id = values.id ?? defaultId(values.client ?? 'sig', now);
  checkId(id);
  if (values.client !== undefined) checkClient(ctx, values.client);
  // Checked again under the lock; early here so that nothing (a private key file) is written for a taken id.
  assertNewId(ctx, readKeyStore(ctx.storePath).doc, id);
  const made = await makeKey(ctx, { kind: values.signing ? 'signing' : 'api-key', client: values.client, id, now, notBefore, notAfter });
  const audit = openAudit(ctx);
  try {
    await changeStore(ctx, made, (doc) => {
      assertNewId(ctx, doc, id);
      doc.keys.push(made.record);
    });
    await record(audit, [keyEvent('created', made.record, 'behalf keys create')]);
  } finally {
    await audit?.close();
  }
  out(createdOutput(made));
}

interface MadeKey {
  record: StoredKey;
  /** The API key itself: printed once, never stored. */
  secret?: string;
  /** The signing key's private JWK file, written before the store names it. */
  privateFile?: string;
}

async function makeKey(ctx: KeysContext, k: { kind: 'api-key' | 'signing'; client?: string; id: string; now: number; notBefore: number; notAfter: number; replaces?: string }): Promise<MadeKey> {
  const lifecycle = {
    id: k.id, createdAt: isoTime(k.now), notBefore: isoTime(k.notBefore), notAfter: isoTime(k.notAfter), status: 'active' as const,
    ...(k.replaces ? { replaces: k.replaces } : {}),
  };
  if (k.kind === 'api-key') {
    const secret = generateApiKey();
    return { secret, record: { ...lifecycle, kind: 'api-key', client: k.client!, hash: hashApiKey(secret) } };
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' }) as { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string };
  const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  const ref = `file:${k.id}.private.jwk`;
  const privateFile = privateKeyPath(ctx.storePath, ref);
  // Exclusive create, 0600: never overwrites a key, never readable by others.
  writeFileSync(privateFile, `${JSON.stringify({ ...jwk, kid, alg: 'ES256' })}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(privateFile, 0o600);
  return { privateFile, record: { ...lifecycle, kind: 'signing', kid, alg: 'ES256', publicJwk, privateKey: ref } };
}

function createdOutput(m: MadeKey): Record<string, unknown> {
  const r = m.record;
  const common = { id: r.id, kind: r.kind, notBefore: r.notBefore, notAfter: r.notAfter, ...(r.replaces ? { replaces: r.replaces } : {}) };
  if (r.kind === 'api-key') {
    return { ...common, client: r.client, key: m.secret, note: 'shown once: give the key to the client through its secret store; the key store keeps only its hash' };
  }
  return { ...common, kid: r.kid, alg: r.alg, privateKey: r.privateKey, note: 'the public key is served at /.well-known/jwks.json; the private JWK file is mode 0600' };
}

// ---- list -----------------------------------------------------------------

function list(argv: string[]): void {
  const { values } = parse(argv, { ...SOURCE, json: { type: 'boolean' } });
  const ctx = context(values);
  const { doc } = readKeyStore(ctx.storePath);
  const now = Date.now();
  const rows = [...ctx.configKeys, ...doc.keys.map(storedLifecycle)].map((k) => {
    const stored = doc.keys.find((s) => s.id === k.id && k.source === 'store');
    return {
      id: k.id, kind: k.kind, client: k.client, source: k.source,
      ...(stored?.kind === 'signing' ? { kid: stored.kid, alg: stored.alg } : {}),
      createdAt: k.createdAt === undefined ? undefined : isoTime(k.createdAt),
      notBefore: k.notBefore === undefined ? undefined : isoTime(k.notBefore),
      notAfter: k.notAfter === undefined ? undefined : isoTime(k.notAfter),
      status: keyState(k, now),
      ageDays: k.createdAt === undefined ? undefined : Math.floor((now - k.createdAt) / DAY_MS),
      age: k.createdAt === undefined ? undefined : duration(now - k.createdAt),
      revokedAt: k.revokedAt === undefined ? undefined : isoTime(k.revokedAt),
      replaces: k.replaces,
      replacedBy: k.replacedBy,
      warnings: keyWarnings(k, ctx.policy, now).map((w) => w.message),
    };
  });
  if (values.json) return out(rows);
  const table = [['ID', 'KIND', 'CLIENT', 'SOURCE', 'CREATED', 'NOT-BEFORE', 'NOT-AFTER', 'STATUS', 'AGE', 'NOTE']];
  for (const r of rows) {
    const note = [...(r.warnings.length ? [`WARN ${r.warnings.join('; ')}`] : []), ...(r.replacedBy ? [`replaced by ${r.replacedBy}`] : [])].join('; ');
    table.push([r.id, r.kind, r.client ?? '-', r.source, short(r.createdAt), short(r.notBefore), short(r.notAfter), r.status, r.age ?? '-', note]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  process.stdout.write(`${table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`);
  if (!rows.length) process.stdout.write(`(no keys in ${ctx.storePath})\n`);
}

// ---- rotate ---------------------------------------------------------------

async function rotate(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...SOURCE, ...VALIDITY, id: { type: 'string' }, 'new-id': { type: 'string' }, 'overlap-days': { type: 'string' } });
  if (!values.id) throw usage('rotate needs --id OLD');
  if (values['not-before'] !== undefined) throw usage('rotate starts the successor now; to publish a key ahead, use create --not-before');
  const ctx = context(values);
  const overlapMs = days(values['overlap-days'] ?? String(DEFAULT_OVERLAP_DAYS), '--overlap-days', true) * DAY_MS;
  const current = readKeyStore(ctx.storePath).doc;
  const old = findStored(ctx, current, values.id, 'rotate');
  const now = Date.now();
  const newId = values['new-id'] ?? defaultId(old.kind === 'api-key' ? old.client : 'sig', now);
  checkId(newId);
  assertNewId(ctx, current, newId);
  const made = await makeKey(ctx, {
    kind: old.kind, client: old.kind === 'api-key' ? old.client : undefined, id: newId, now, notBefore: now,
    notAfter: expiry(values, now, ctx.policy), replaces: old.id,
  });
  const audit = openAudit(ctx);
  let retired!: StoredKey;
  try {
    await changeStore(ctx, made, (doc) => {
      assertNewId(ctx, doc, newId);
      // Read again under the lock: the key may have changed since.
      retired = findStored(ctx, doc, old.id, 'rotate');
      if (retired.status === 'revoked') throw fail(`key ${retired.id} is revoked: create a new key instead`);
      if (retired.replacedBy) throw fail(`key ${retired.id} was already rotated (replaced by ${retired.replacedBy}): rotate that one`);
      if (Date.parse(retired.notBefore) >= now) throw fail(`key ${retired.id} is not valid yet: revoke it instead`);
      // Both keys are valid during the overlap; the old one expires at its end (or keeps an earlier expiry).
      retired.notAfter = isoTime(Math.min(Date.parse(retired.notAfter), Math.max(now + overlapMs, Date.parse(retired.notBefore) + 1)));
      retired.replacedBy = newId;
      doc.keys.push(made.record);
    });
    await record(audit, [keyEvent('rotated', retired, 'behalf keys rotate'), keyEvent('created', made.record, 'behalf keys rotate')]);
  } finally {
    await audit?.close();
  }
  out({ rotated: retired.id, oldNotAfter: retired.notAfter, ...createdOutput(made) });
}

// ---- revoke ---------------------------------------------------------------

async function revoke(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...SOURCE, id: { type: 'string' }, reason: { type: 'string' } });
  if (!values.id) throw usage('revoke needs --id ID');
  const ctx = context(values);
  findStored(ctx, readKeyStore(ctx.storePath).doc, values.id, 'revoke');
  const audit = openAudit(ctx);
  let revoked!: StoredKey;
  try {
    await updateKeyStore(ctx.storePath, (doc) => {
      revoked = findStored(ctx, doc, values.id!, 'revoke');
      if (revoked.status === 'revoked') throw fail(`key ${revoked.id} is already revoked (${revoked.revokedAt})`);
      revoked.status = 'revoked';
      revoked.revokedAt = isoTime(Date.now());
      if (values.reason) revoked.revokedReason = values.reason.slice(0, 500);
    });
    await record(audit, [keyEvent('revoked', revoked, 'behalf keys revoke', values.reason)]);
  } finally {
    await audit?.close();
  }
  let destroyed: string | undefined;
  if (revoked.kind === 'signing') {
    // A revoked signing key never signs again: its private half has no further use.
    try {
      unlinkSync(privateKeyPath(ctx.storePath, revoked.privateKey));
      destroyed = revoked.privateKey;
    } catch {
      // already gone
    }
  }
  out({ revoked: revoked.id, kind: revoked.kind, revokedAt: revoked.revokedAt, ...(destroyed ? { privateKeyDeleted: destroyed } : {}), note: 'a running gateway refuses this key from its next request on' });
}

// ---- helpers --------------------------------------------------------------

/** Applies a change under the store lock; a signing key's private file is removed again if the store was not written. */
async function changeStore(ctx: KeysContext, made: MadeKey, change: (doc: KeyStoreDoc) => void): Promise<void> {
  try {
    await updateKeyStore(ctx.storePath, change);
  } catch (err) {
    if (made.privateFile) {
      try { unlinkSync(made.privateFile); } catch { /* not written */ }
    }
    throw err;
  }
}

function findStored(ctx: KeysContext, doc: KeyStoreDoc, id: string, verb: string): StoredKey {
  const k = doc.keys.find((x) => x.id === id);
  if (k) return k;
  if (ctx.configKeys.some((c) => c.id === id)) {
    throw fail(`key ${id} is written in the gateway config (static form), not in the key store: ${verb === 'revoke' ? 'remove it from clients[].apiKeys' : 'create a new key, then give the old one notAfter in the config'}`);
  }
  throw fail(`no key ${id} in ${ctx.storePath}`);
}

function assertNewId(ctx: KeysContext, doc: KeyStoreDoc, id: string): void {
  if (doc.keys.some((k) => k.id === id) || ctx.configKeys.some((k) => k.id === id)) throw fail(`a key with id ${id} already exists`);
}

function checkId(id: string): void {
  if (!KeyId.safeParse(id).success) throw usage(`--id: ${id} is not a key id (letters, digits, _ . : - only, at most 64)`);
}

function checkClient(ctx: KeysContext, client: string): void {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(client)) throw usage(`--client: ${client} is not a client id`);
  if (ctx.clients && !ctx.clients.has(client)) throw fail(`--client: the config declares no client ${client}`);
}

function defaultId(prefix: string, now: number): string {
  return `${prefix}-${isoTime(now).slice(0, 10).replace(/-/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** notAfter from --not-after DATE or --days N (counted from notBefore), else the max age. */
function expiry(values: { 'not-after'?: string; days?: string }, notBefore: number, policy: KeyAgePolicy): number {
  if (values['not-after'] !== undefined && values.days !== undefined) throw usage('give --not-after or --days, not both');
  const notAfter = time(values['not-after'], '--not-after') ?? notBefore + (values.days === undefined ? policy.maxAgeDays : days(values.days, '--days', false)) * DAY_MS;
  if (notAfter <= notBefore) throw usage('the key would expire before it becomes valid');
  return notAfter;
}

function days(s: string, flag: string, zeroOk: boolean): number {
  const n = Number(s);
  if (!/^\d+(\.\d+)?$/.test(s) || !Number.isFinite(n) || (!zeroOk && n === 0)) throw usage(`${flag} must be a ${zeroOk ? 'non-negative' : 'positive'} number of days`);
  return n;
}

function time(s: string | undefined, flag: string): number | undefined {
  if (s === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(t)) throw usage(`${flag} must be an ISO 8601 date or date-time`);
  return t;
}

function short(s: string | undefined): string {
  return s === undefined ? '-' : s.replace(/:\d{2}Z$/, 'Z');
}

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers)
  }
  return `${user}@${hostname()}`;
}

/** One audit record per key change, naming the operator and the command. */
function keyEvent(outcome: 'created' | 'rotated' | 'revoked', k: StoredKey, command: string, why?: string): AuditEvent {
  return keyChangeEvent(outcome, k, `${operator()} with ${command}`, why);
}

/** Opened before the change, so an unusable audit trail stops the command before anything changes. */
function openAudit(ctx: KeysContext): SqliteAuditStore | undefined {
  if (!ctx.auditPath) {
    process.stderr.write(`behalf keys: no audit trail given (--audit PATH or --config FILE): this change is recorded in ${basename(ctx.storePath)} only\n`);
    return undefined;
  }
  try {
    return new SqliteAuditStore(ctx.auditPath);
  } catch {
    throw new BehalfError('invalid_request', `cannot open the audit trail ${ctx.auditPath}: nothing was changed`);
  }
}

async function record(store: SqliteAuditStore | undefined, events: AuditEvent[]): Promise<void> {
  if (!store) return;
  try {
    for (const e of events) await store.append(e);
  } catch {
    throw new BehalfError('audit_unavailable', 'the key store was changed, but its audit record could not be written');
  }
}
