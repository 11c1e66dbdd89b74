/**
 * An outside process holding the write lock of an SQLite database, as a
 * backup tool or a stray `sqlite3` shell would: `node sqlite-locker.js DB MS`
 * takes an exclusive transaction, prints `locked`, holds it MS milliseconds
 * (or until SIGTERM), commits, prints `released` and exits.
 */
import Database from 'better-sqlite3';

const [path, ms] = process.argv.slice(2);
if (!path || !ms) throw new Error('usage: sqlite-locker.js DB MS');
const db = new Database(path, { timeout: 5000, fileMustExist: true });
db.exec('BEGIN EXCLUSIVE');
process.stdout.write('locked\n');
const release = () => {
  db.exec('COMMIT');
  db.close();
  process.stdout.write('released\n');
  process.exit(0);
};
const timer = setTimeout(release, Number(ms));
process.once('SIGTERM', () => {
  clearTimeout(timer);
  release();
});
