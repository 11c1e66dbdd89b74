import { accessPath } from '../expression-facts.js';

/**
 * What a rule reads of one map whose values a record may not hold
 * (arguments, claims, tool annotations): `keys` whose values it reads by a
 * constant name (`args.id`, `args["id"].x`), `presence` of keys it tests
 * with `has(args.id)`, and `whole` when it reads the map any other way (a
 * computed key, `'id' in args`, `size(args)`, optional access, the map
 * passed whole). A replay can only evaluate reads of the first kind with a
 * value missing (see decide.ts); the others make the rule undecidable.
 */
export interface MapReads {
  keys: Set<string>;
  presence: Set<string>;
  whole: boolean;
}

export interface RuleReads {
  args: MapReads;
  promptArgs: MapReads;
  claims: MapReads;
  annotations: MapReads;
  /** Reads `user.scopes` in its expression (the step-up `scopes` of a rule are not this). */
  scopes: boolean;
}

interface Node {
  op: string;
  args: unknown;
}

const ACCESS = new Set(['.', '.?', '[]', '[?]']);
const OPTIONAL = new Set(['.?', '[?]']);

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as Node).op === 'string';
}

const emptyMap = (): MapReads => ({ keys: new Set(), presence: new Set(), whole: false });

function mapRead(m: MapReads, rest: readonly (string | undefined)[], presence: boolean, optional: boolean): void {
  const key = rest[0];
  if (optional || key === undefined) m.whole = true;
  else if (presence && rest.length === 1) m.presence.add(key);
  else m.keys.add(key);
}

/** Whether the chain ending at `n` uses optional access anywhere. */
function hasOptional(n: unknown): boolean {
  let cur = n;
  while (isNode(cur) && ACCESS.has(cur.op)) {
    if (OPTIONAL.has(cur.op)) return true;
    cur = (cur.args as unknown[])[0];
  }
  return false;
}

function classify(reads: RuleReads, path: readonly (string | undefined)[], presence: boolean, optional: boolean): void {
  const [root, first] = path;
  const rest = path.slice(1);
  switch (root) {
    case 'args':
      return mapRead(reads.args, rest, presence, optional);
    case 'prompt':
      if (path.length === 1 || first === undefined) reads.promptArgs.whole = true;
      else if (first === 'arguments') mapRead(reads.promptArgs, path.slice(2), presence, optional);
      return;
    case 'user':
      if (path.length === 1 || first === undefined) {
        reads.claims.whole = true;
        reads.scopes = true;
      } else if (first === 'claims') mapRead(reads.claims, path.slice(2), presence, optional);
      else if (first === 'scopes') reads.scopes = true;
      return;
    case 'tool':
      if (path.length === 1 || first === undefined) reads.annotations.whole = true;
      else if (first === 'annotations') mapRead(reads.annotations, path.slice(2), presence, optional);
      return;
  }
}

/** What a parsed `when` expression reads of the maps a record may hold only in part. */
export function ruleReads(ast: unknown): RuleReads {
  const reads: RuleReads = {
    args: emptyMap(),
    promptArgs: emptyMap(),
    claims: emptyMap(),
    annotations: emptyMap(),
    scopes: false,
  };
  const visit = (n: unknown, parent: Node | undefined, asObject: boolean): void => {
    if (Array.isArray(n)) {
      for (const c of n) visit(c, parent, false);
      return;
    }
    if (!isNode(n)) return;
    const chain = ACCESS.has(n.op) || n.op === 'id';
    // Only the outermost access of a chain is classified: `args.a.b` reads args.a once.
    if (chain && !asObject) {
      const path = accessPath(n);
      const presence = parent?.op === 'call' && (parent.args as unknown[])[0] === 'has';
      if (path) classify(reads, path, presence, hasOptional(n));
    }
    const args = n.args;
    if (ACCESS.has(n.op) && Array.isArray(args)) {
      visit(args[0], n, true);
      for (const a of args.slice(1)) visit(a, n, false);
    } else if (Array.isArray(args)) for (const a of args) visit(a, n, false);
    else if (isNode(args)) visit(args, n, false);
  };
  visit(ast, undefined, false);
  return reads;
}
