import { once } from 'node:events';
import { migrateSqliteToPg } from '../audit/pg-migrate.js';
import { parse } from './args.js';
import { postgresArg } from './audit-source.js';

/**
 * `behalf audit migrate --from FILE --to-postgres URL`: copies an embedded
 * trail into an empty PostgreSQL trail with its hashes as they are, then
 * verifies what PostgreSQL holds; the head printed is the file's head.
 */
export async function migrateCommand(argv: string[], usage: (problem: string) => Error): Promise<void> {
  const { values, positionals } = parse(argv, { from: { type: 'string' }, 'to-postgres': { type: 'string' } });
  if (positionals.length) throw usage(`unexpected argument ${positionals[0]}`);
  if (values.from === undefined || values['to-postgres'] === undefined)
    throw usage('migrate needs --from SQLITE_FILE and --to-postgres URL');
  const { source, target } = await migrateSqliteToPg(values.from, postgresArg(values['to-postgres']));
  const say = async (text: string) => {
    if (!process.stdout.write(text)) await once(process.stdout, 'drain');
  };
  if (!source.ok) {
    const lines = source.problems.map((p) => `seq ${p.seq}: ${p.problem}: ${p.detail}\n`).join('');
    await say(`FAILED: ${values.from} does not verify; nothing was migrated\n${lines}`);
    process.exitCode = 1;
    return;
  }
  const head = (r: typeof source) => (r.head ? `head ${r.head.seq} ${r.head.hash}` : 'no head (empty)');
  const same = target?.ok && target.count === source.count && target.head?.hash === source.head?.hash;
  if (!same) {
    const lines = (target?.problems ?? []).map((p) => `seq ${p.seq}: ${p.problem}: ${p.detail}\n`).join('');
    await say(
      `FAILED: the migrated trail does not verify as the source did (source ${source.count} records, ${head(source)}; target ${target?.count ?? 0} records, ${target ? head(target) : 'unread'})\n${lines}`,
    );
    process.exitCode = 1;
    return;
  }
  await say(`ok: migrated ${source.count} records, ${head(source)}; verified in PostgreSQL\n`);
}
