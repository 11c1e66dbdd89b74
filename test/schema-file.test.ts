import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AUDIT_RECORD_SCHEMA_ID, auditRecordJsonSchema } from '../src/audit/record-schema.js';
import { loadConfigFile } from '../src/config/load.js';
import { CONFIG_SCHEMA_ID, gatewayJsonSchema } from '../src/config/schema.js';
import { EVIDENCE_SCHEMA_ID, evidenceJsonSchema } from '../src/review/evidence/schema.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

describe('shipped schema and example', () => {
  it('schema/gateway.schema.json is generated from the current definitions (run npm run schema)', () => {
    const shipped = JSON.parse(readFileSync(root('schema/gateway.schema.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(shipped, gatewayJsonSchema());
    assert.equal(shipped.$id, CONFIG_SCHEMA_ID, 'the schema carries its version');
  });

  it('schema/audit-record.v1.schema.json is generated from the current audit record definition (run npm run schema)', () => {
    const shipped = JSON.parse(readFileSync(root('schema/audit-record.v1.schema.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(shipped, auditRecordJsonSchema());
    assert.equal(shipped.$id, AUDIT_RECORD_SCHEMA_ID, 'the schema carries its version');
  });

  it('schema/evidence.v1.schema.json is generated from the current evidence pack definition (run npm run schema)', () => {
    const shipped = JSON.parse(readFileSync(root('schema/evidence.v1.schema.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(shipped, evidenceJsonSchema());
    // Packs point at this id; moving it would orphan every pack already written.
    assert.equal(shipped.$id, EVIDENCE_SCHEMA_ID);
  });

  it('examples/gateway.yaml validates, with its secrets by reference', () => {
    const { config } = loadConfigFile(root('examples/gateway.yaml'));
    assert.deepEqual(Object.keys(config.upstreams).sort(), ['crm', 'docs']);
    assert.equal(config.server.tls?.key, 'file:/etc/behalf/tls.key');
    assert.equal(config.policy.rules.length, 6);
    assert.deepEqual(
      config.policy.rateLimits.map((l) => l.id),
      ['calls-per-user'],
    );
    assert.equal(config.audit.arguments.digestKey, 'env:BEHALF_AUDIT_DIGEST_KEY');
  });
});
