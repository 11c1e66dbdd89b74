import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { findLiteralSecrets, type LiteralSecret } from '../../config/literal-secrets.js';
import { parseConfig } from '../../config/load.js';
import { GatewayConfigSchema, type GatewayConfig } from '../../config/schema.js';
import { ClientSchema, KeysSchema } from '../../config/schema-clients.js';
import { parseYamlText } from '../../config/yaml-file.js';
import type { KeyLifecycle } from '../../keys/lifecycle.js';
import { configKeyLifecycles } from '../../keys/ring.js';
import { readKeyStore, storedLifecycle } from '../../keys/store.js';
import { canonicalJson } from '../../shared/canonical-json.js';
import { sha256Hex } from '../../shared/hash.js';
import type { ReviewContext } from '../context.js';

/**
 * A behalf gateway config as the review sees it: read, never started. The
 * loader refuses a file holding a literal secret, but a review must report
 * that secret as a finding and still judge the rest, so the file is taken
 * apart step by step — raw YAML, the literal-secret walk, the schema, the
 * loader — and every later step is optional.
 */
export interface ConfigReview {
  /** As given on the command line (what evidence names). */
  file: string;
  baseDir: string;
  /** The file could not be read or is not YAML: nothing else is known. */
  error?: string;
  /** `sha256:<hex>` of the file's bytes, when it could be read. */
  hash?: string;
  raw?: Record<string, unknown>;
  literals: LiteralSecret[];
  /** Present when the schema accepts the file (defaults applied). */
  config?: GatewayConfig;
  /** Why the gateway would refuse the file (schema, cross-field rules, policy); paths and reasons only. */
  refusal?: string;
  upstreams: UpstreamView[];
  keys: KeysView;
}

/**
 * One upstream, read leniently from the raw YAML: a literal secret in a
 * header fails the schema, yet its transport and downstream strategy must
 * still be judged. Defaults follow the schema's.
 */
export interface UpstreamView {
  name: string;
  transport: string;
  url?: string;
  command?: string;
  args: string[];
  cwd?: string;
  envAllow: string[];
  /** Raw values: `env:`/`file:` references or `{ value }` literals. */
  env: Record<string, unknown>;
  headers: Record<string, unknown>;
  strategy: string;
  credentialEnv?: string;
  uid?: number;
  gid?: number;
}

export interface KeysView {
  /** Config keys (clients[].apiKeys) and key-store keys. */
  lifecycles: KeyLifecycle[];
  maxAgeDays: number;
  warnBeforeDays: number;
  /** keys.maxAgeDays written in the file (else the schema's default applies). */
  maxAgeConfigured: boolean;
  storeFile?: string;
  /** The key store exists and was read. */
  storeRead: boolean;
  storeError?: string;
  /** The config's clients could not be read, so its static keys are unknown. */
  clientsUnreadable: boolean;
}

const reviews = new WeakMap<ReviewContext, ConfigReview | undefined>();

/** The config named by --config, read once per review; also sets the pack's configHash and keysHash. */
export function configReview(ctx: ReviewContext): ConfigReview | undefined {
  if (reviews.has(ctx)) return reviews.get(ctx);
  const file = ctx.inputs.configPath;
  const review = file === undefined ? undefined : readConfig(file);
  reviews.set(ctx, review);
  if (review) {
    if (review.hash) ctx.facts.configHash = review.hash;
    if (!review.error && !review.keys.storeError && !review.keys.clientsUnreadable) ctx.facts.keysHash = keysHash(review.keys.lifecycles);
  }
  return review;
}

export function readConfig(file: string): ConfigReview {
  const full = resolve(file);
  const baseDir = dirname(full);
  const empty: ConfigReview = { file, baseDir, literals: [], upstreams: [], keys: { lifecycles: [], maxAgeDays: 90, warnBeforeDays: 14, maxAgeConfigured: false, storeRead: false, clientsUnreadable: true } };
  let bytes: Buffer;
  try {
    bytes = readFileSync(full);
  } catch (err) {
    return { ...empty, error: `cannot read the config file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const hash = `sha256:${sha256Hex(bytes)}`;
  let parsed: unknown;
  try {
    parsed = parseYamlText(bytes.toString('utf8'), `config file ${file}`);
  } catch (err) {
    return { ...empty, hash, error: (err as Error).message };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ...empty, hash, error: `config file ${file} is not a YAML mapping` };
  const raw = parsed as Record<string, unknown>;
  const literals = findLiteralSecrets(raw);
  let config: GatewayConfig | undefined;
  let refusal: string | undefined;
  try {
    // The project's own loader: what the gateway would say about this file (it also refuses literal secrets).
    config = parseConfig(raw, baseDir).config;
  } catch (err) {
    refusal = (err as Error).message;
    // Refused (a literal secret, a policy error): the schema alone still gives the rest to judge.
    config = GatewayConfigSchema.safeParse(raw).data;
  }
  return { file, baseDir, hash, raw, literals, config, refusal, upstreams: upstreamViews(raw), keys: keysView(raw, config, baseDir) };
}

function keysView(raw: Record<string, unknown>, config: GatewayConfig | undefined, baseDir: string): KeysView {
  const rawKeys = record(raw.keys);
  const keys = config?.keys ?? KeysSchema.safeParse(rawKeys ?? {}).data;
  const clients = config?.clients ?? z.array(ClientSchema).safeParse(raw.clients ?? []).data;
  const view: KeysView = {
    lifecycles: [],
    maxAgeDays: keys?.maxAgeDays ?? 90,
    warnBeforeDays: keys?.warnBeforeDays ?? 14,
    maxAgeConfigured: typeof rawKeys?.maxAgeDays === 'number',
    storeRead: false,
    clientsUnreadable: clients === undefined,
  };
  try {
    if (clients) view.lifecycles.push(...configKeyLifecycles({ clients } as GatewayConfig).map((c) => c.lifecycle));
  } catch {
    // Reported as clients that do not validate (keys-review.ts); the loader's refusal names the field.
    view.clientsUnreadable = true;
  }
  const storeFile = keys?.file ?? (typeof rawKeys?.file === 'string' ? rawKeys.file : undefined);
  if (storeFile !== undefined) {
    view.storeFile = storeFile;
    try {
      view.lifecycles.push(...readKeyStore(resolve(baseDir, storeFile)).doc.keys.map(storedLifecycle));
      view.storeRead = true;
    } catch (err) {
      view.storeError = (err as Error).message;
    }
  }
  return view;
}

/**
 * The keys' public state only — ids, kinds, clients, status and dates — so
 * two packs show whether a key was added, rotated or revoked, and nothing
 * here helps anyone guess a key.
 */
export function keysHash(keys: KeyLifecycle[]): string {
  const state = [...keys]
    .map((k) => ({ id: k.id, kind: k.kind, client: k.client, source: k.source, status: k.status, createdAt: k.createdAt, notBefore: k.notBefore, notAfter: k.notAfter, revokedAt: k.revokedAt, replaces: k.replaces, replacedBy: k.replacedBy }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return `sha256:${sha256Hex(canonicalJson(state))}`;
}

function upstreamViews(raw: Record<string, unknown>): UpstreamView[] {
  const ups = record(raw.upstreams);
  if (!ups) return [];
  return Object.entries(ups).map(([name, v]) => {
    const u = record(v) ?? {};
    const perUser = record(u.perUser) ?? {};
    const strategy = record(u.downstream)?.strategy;
    return {
      name,
      transport: typeof u.transport === 'string' ? u.transport : 'unknown',
      url: str(u.url),
      command: str(u.command),
      args: Array.isArray(u.args) ? u.args.filter((a): a is string => typeof a === 'string') : [],
      cwd: str(u.cwd),
      envAllow: Array.isArray(u.envAllow) ? u.envAllow.filter((a): a is string => typeof a === 'string') : ['PATH'],
      env: record(u.env) ?? {},
      headers: record(u.headers) ?? {},
      strategy: typeof strategy === 'string' ? strategy : 'none',
      credentialEnv: str(perUser.credentialEnv),
      uid: typeof perUser.uid === 'number' ? perUser.uid : undefined,
      gid: typeof perUser.gid === 'number' ? perUser.gid : undefined,
    };
  });
}

export function record(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A stdio env entry's literal value (`{ value: X }`), if it is one. */
export function envLiteral(v: unknown): string | undefined {
  const r = record(v);
  return r && typeof r.value === 'string' ? r.value : undefined;
}

/** The evidence item for "--config given but unreadable", shared by every static part. */
export function unreadableItem(review: ConfigReview, probe: string): { outcome: 'not-assessed'; probe: string; detail: string; location: { file: string } } {
  return { outcome: 'not-assessed', probe, detail: `the config could not be read: ${review.error ?? 'unknown reason'}`, location: { file: review.file } };
}
