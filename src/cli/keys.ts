import { basename, resolve } from 'node:path';
import { BehalfError } from '../errors.js';
import { generateApiKey, hashApiKey } from '../identity/api-keys.js';
import { createKey, DEFAULT_OVERLAP_DAYS, revokeKey, rotateKey, type ChangeOptions } from '../keys/changes.js';
import { DAY_MS, DEFAULT_AGE_POLICY, type KeyAgePolicy } from '../keys/lifecycle.js';
import { listKeys } from '../keys/listing.js';
import { defaultKeyId } from '../keys/new-key.js';
import { KeyId } from '../keys/store.js';
import { configKeyStore, type KeyStoreTarget } from '../keys/target.js';
import { parse } from './args.js';
import { quickstartConfig } from './quickstart-files.js';
import { createdOutput, keyTable } from './keys-output.js';

export const USAGE = `usage: behalf keys COMMAND
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
  --config FILE                     the gateway config: keys.file, keys.maxAgeDays/warnBeforeDays, audit
  --store FILE [--audit PATH] [--max-age-days N] [--warn-before-days N]
create, rotate and revoke append a 'key' record to the audit trail (--audit PATH, or the config's:
its PostgreSQL trail when audit.postgres is set, as for a fleet).
A new key expires after keys.maxAgeDays (default 90) unless --days or --not-after says otherwise.`;

const SOURCE = {
  store: { type: 'string' },
  config: { type: 'string', short: 'c' },
  audit: { type: 'string' },
  'max-age-days': { type: 'string' },
  'warn-before-days': { type: 'string' },
} as const;
const VALIDITY = {
  'not-before': { type: 'string' },
  'not-after': { type: 'string' },
  days: { type: 'string' },
} as const;

/** `behalf keys …`: managed client API keys and gateway signing keys. */
export async function keysCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'generate':
      return generate(rest);
    case 'hash':
      return hash(rest);
    case 'create':
      return create(rest);
    case 'list':
      return list(rest);
    case 'rotate':
      return rotate(rest);
    case 'revoke':
      return revoke(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      throw usage(sub === undefined ? 'a subcommand is required' : `unknown subcommand ${sub}`);
  }
}

function usage(problem: string): BehalfError {
  return new BehalfError('usage', `${problem}\n${USAGE}`);
}

function generate(argv: string[]): void {
  parse(argv, {});
  const key = generateApiKey();
  out({
    key,
    hash: hashApiKey(key),
    note: "store the key in the client's secret store; put only the hash in the gateway config (or use behalf keys create with a key store)",
  });
}

async function hash(argv: string[]): Promise<void> {
  parse(argv, {});
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const key = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!key) throw usage('hash reads the key on stdin');
  out({ hash: hashApiKey(key) });
}

function context(values: {
  store?: string;
  config?: string;
  audit?: string;
  'max-age-days'?: string;
  'warn-before-days'?: string;
}): KeyStoreTarget {
  if (values.store && values.config) throw usage('give --store or --config, not both');
  if (!values.store && !values.config) values = { ...values, config: quickstartConfig('keys') };
  const override = (p: KeyAgePolicy): KeyAgePolicy => ({
    maxAgeDays:
      values['max-age-days'] === undefined ? p.maxAgeDays : days(values['max-age-days'], '--max-age-days', false),
    warnBeforeDays:
      values['warn-before-days'] === undefined
        ? p.warnBeforeDays
        : days(values['warn-before-days'], '--warn-before-days', true),
  });
  if (values.config) {
    const { auditPostgres, ...target } = configKeyStore(values.config);
    // --audit PATH names the trail outright; else the config's, PostgreSQL (a fleet's) or SQLite.
    const trail = values.audit ? { auditPath: resolve(values.audit) } : auditPostgres ? { auditPostgres } : {};
    return { ...target, ...trail, policy: override(target.policy) };
  }
  if (!values.store) throw usage('the key store is required: --store FILE or --config FILE');
  return {
    storePath: resolve(values.store),
    auditPath: values.audit && resolve(values.audit),
    policy: override(DEFAULT_AGE_POLICY),
    configKeys: [],
  };
}

/** How a change made here reaches the audit trail, or the operator is told it does not. */
function changeOptions(ctx: KeyStoreTarget, command: string): ChangeOptions {
  return {
    command,
    unaudited: () =>
      process.stderr.write(
        `behalf keys: no audit trail given (--audit PATH or --config FILE): this change is recorded in ${basename(ctx.storePath)} only\n`,
      ),
  };
}

// ---- create ---------------------------------------------------------------

async function create(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...SOURCE,
    ...VALIDITY,
    client: { type: 'string' },
    signing: { type: 'boolean' },
    id: { type: 'string' },
  });
  if (Boolean(values.signing) === Boolean(values.client))
    throw usage('create needs --client ID (an API key) or --signing (a gateway signing key)');
  const ctx = context(values);
  const now = Date.now();
  const notBefore = time(values['not-before'], '--not-before') ?? now;
  const notAfter = expiry(values, notBefore, ctx.policy);
  const id = checkId(values.id ?? defaultKeyId(values.client, now));
  if (values.client !== undefined) checkClient(values.client);
  const made = await createKey(
    ctx,
    { kind: values.signing ? 'signing' : 'api-key', client: values.client, id, now, notBefore, notAfter },
    changeOptions(ctx, 'behalf keys create'),
  );
  out(createdOutput(made));
}

// ---- list -----------------------------------------------------------------

function list(argv: string[]): void {
  const { values } = parse(argv, { ...SOURCE, json: { type: 'boolean' } });
  const ctx = context(values);
  const rows = listKeys(ctx);
  if (values.json) return out(rows);
  process.stdout.write(keyTable(rows));
  if (!rows.length) process.stdout.write(`(no keys in ${ctx.storePath})\n`);
}

// ---- rotate ---------------------------------------------------------------

async function rotate(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    ...SOURCE,
    ...VALIDITY,
    id: { type: 'string' },
    'new-id': { type: 'string' },
    'overlap-days': { type: 'string' },
  });
  if (!values.id) throw usage('rotate needs --id OLD');
  if (values['not-before'] !== undefined)
    throw usage('rotate starts the successor now; to publish a key ahead, use create --not-before');
  const ctx = context(values);
  const overlapMs = days(values['overlap-days'] ?? String(DEFAULT_OVERLAP_DAYS), '--overlap-days', true) * DAY_MS;
  const { retired, successor } = await rotateKey(
    ctx,
    {
      id: values.id,
      overlapMs,
      successorId: (client, now) => checkId(values['new-id'] ?? defaultKeyId(client, now)),
      successorNotAfter: (notBefore) => expiry(values, notBefore, ctx.policy),
    },
    changeOptions(ctx, 'behalf keys rotate'),
  );
  out({ rotated: retired.id, oldNotAfter: retired.notAfter, ...createdOutput(successor) });
}

// ---- revoke ---------------------------------------------------------------

async function revoke(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...SOURCE, id: { type: 'string' }, reason: { type: 'string' } });
  if (!values.id) throw usage('revoke needs --id ID');
  const ctx = context(values);
  const { revoked, privateKeyDeleted } = await revokeKey(
    ctx,
    values.id,
    values.reason,
    changeOptions(ctx, 'behalf keys revoke'),
  );
  out({
    revoked: revoked.id,
    kind: revoked.kind,
    revokedAt: revoked.revokedAt,
    ...(privateKeyDeleted ? { privateKeyDeleted } : {}),
    note: 'a running gateway refuses this key from its next request on',
  });
}

// ---- flags and output -----------------------------------------------------

function checkId(id: string): string {
  if (!KeyId.safeParse(id).success)
    throw usage(`--id: ${id} is not a key id (letters, digits, _ . : - only, at most 64)`);
  return id;
}

function checkClient(client: string): void {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(client)) throw usage(`--client: ${client} is not a client id`);
}

/** notAfter from --not-after DATE or --days N (counted from notBefore), else the max age. */
function expiry(values: { 'not-after'?: string; days?: string }, notBefore: number, policy: KeyAgePolicy): number {
  if (values['not-after'] !== undefined && values.days !== undefined)
    throw usage('give --not-after or --days, not both');
  const notAfter =
    time(values['not-after'], '--not-after') ??
    notBefore + (values.days === undefined ? policy.maxAgeDays : days(values.days, '--days', false)) * DAY_MS;
  if (notAfter <= notBefore) throw usage('the key would expire before it becomes valid');
  return notAfter;
}

function days(s: string, flag: string, zeroOk: boolean): number {
  const n = Number(s);
  if (!/^\d+(\.\d+)?$/.test(s) || !Number.isFinite(n) || (!zeroOk && n === 0))
    throw usage(`${flag} must be a ${zeroOk ? 'non-negative' : 'positive'} number of days`);
  return n;
}

function time(s: string | undefined, flag: string): number | undefined {
  if (s === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(t)) throw usage(`${flag} must be an ISO 8601 date or date-time`);
  return t;
}

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
