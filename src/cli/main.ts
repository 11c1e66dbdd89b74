#!/usr/bin/env node
import { BehalfError, EXIT } from '../errors.js';
import { auditCommand, USAGE as AUDIT_USAGE } from './audit.js';
import { configCommand, USAGE as CONFIG_USAGE } from './config.js';
import { gatewayCommand } from './gateway.js';
import { GATEWAY_USAGE, hintFor, QUICKSTART_USAGE, wantsHelp } from './help.js';
import { keysCommand, USAGE as KEYS_USAGE } from './keys.js';
import { policyCommand, USAGE as POLICY_USAGE } from './policy.js';
import { reviewCommand, USAGE as REVIEW_USAGE } from './review.js';
import { BEHALF_VERSION } from '../review/version.js';
import { revokeCommand, USAGE as REVOKE_USAGE } from './revoke.js';

const USAGE = `behalf — a verified user on every MCP call

usage:
  behalf quickstart                  run the dev IdP, the demo CRM and the gateway on loopback (npm start)
  behalf token --user NAME           print fresh headers for a quickstart user
  behalf gateway --config FILE [--instance-id ID]
                                     run the gateway (ID names it in logs and audit records; default host-pid)
  behalf config check --config FILE  validate a configuration (--sdk: one for behalf/sdk)
  behalf config schema               print the configuration's JSON Schema
  behalf keys generate               create an API key and its hash (for the config's static form)
  behalf keys create|list|rotate|revoke (--config FILE | --store FILE)
                                     managed API keys and gateway signing keys, each change audited (behalf keys help)
  behalf revoke --user SUB [--issuer ISS] | --client ID | --token-jti JTI | --session ID | --key ID [--reason TEXT]
                                     cut off a user, client, token, session or key on a running gateway at once
  behalf audit tail|query|verify|export (--config FILE | --db PATH | --postgres URL)
                                     read the audit log, check its hash chain, export it as JSONL
  behalf audit migrate --from SQLITE_FILE --to-postgres URL
                                     copy an embedded trail into a fleet's PostgreSQL, hashes unchanged
  behalf policy test FILE            run a policy test file: each case decided as the gateway decides it
  behalf policy explain …            show every rule's part in one decision (behalf policy help)
  behalf policy replay --policy NEW.yaml (--config FILE | --db PATH | --postgres URL)
                                     decide the recorded decisions again with a proposed policy; exit 1
                                     when it allows what was denied (--fail-on), for CI
  behalf review --target URL --profile FILE --out DIR
                                     review an MCP deployment against the authentication boundary;
                                     writes an evidence pack (behalf review --help)
  behalf review diff OLD NEW         is a re-assessment due?
  behalf --version                   print this package's version

  behalf COMMAND --help              the options of any command or subcommand

Run in a quickstart's folder, keys and audit use its .behalf/gateway.yaml when given no --config.

exit codes:
  0  done
  1  failed: a check, a verification or a policy test case failed, or a file is invalid
     (review: a check failed at or above --fail-on)
  2  usage: the command line, or what it asks for, is wrong (review: also a target that is
     unreachable or not an MCP endpoint)
  3  unavailable: a store the command needs cannot be opened or is locked, or a quickstart
     already runs from that state folder; try again later
  4  review only: nothing failed at or above --fail-on, but not every check passed
`;

/** Each command's own usage, for COMMAND --help and COMMAND SUBCOMMAND --help. */
async function usageOf(command: string): Promise<string | undefined> {
  const table: Record<string, () => Promise<string> | string> = {
    gateway: () => GATEWAY_USAGE,
    config: () => CONFIG_USAGE,
    keys: () => KEYS_USAGE,
    audit: () => AUDIT_USAGE,
    policy: () => POLICY_USAGE,
    review: () => REVIEW_USAGE,
    revoke: () => REVOKE_USAGE,
    quickstart: () => QUICKSTART_USAGE,
    token: async () => (await import('../../demo/quickstart/token.js')).USAGE,
  };
  return table[command]?.();
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const own = command === undefined ? undefined : await usageOf(command);
  if (own !== undefined && wantsHelp(rest)) {
    process.stdout.write(`${own}\n`);
    return;
  }
  switch (command) {
    case 'gateway':
      return gatewayCommand(rest);
    case 'config':
      return configCommand(rest);
    case 'keys':
      return keysCommand(rest);
    case 'audit':
      return auditCommand(rest);
    case 'policy':
      return policyCommand(rest);
    case 'review':
      return reviewCommand(rest);
    case 'revoke':
      return revokeCommand(rest);
    case 'quickstart':
      return (await import('../../demo/quickstart/run.js')).quickstartCommand(rest);
    case 'token':
      return (await import('../../demo/quickstart/token.js')).tokenCommand(rest);
    case '--version':
      process.stdout.write(`${BEHALF_VERSION}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new BehalfError('usage', `unknown command ${command}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof BehalfError || err instanceof Error ? err.message : 'failed';
  const hint = hintFor(err, process.argv[2]);
  process.stderr.write(`behalf: ${message}\n${hint ? `hint: ${hint}\n` : ''}`);
  process.exit(err instanceof BehalfError ? err.exitCode : EXIT.failed);
});
