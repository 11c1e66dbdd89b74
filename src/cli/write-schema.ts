import { writeFileSync } from 'node:fs';
import { auditRecordJsonSchema } from '../audit/record-schema.js';
import { gatewayJsonSchema } from '../config/schema.js';
import { sdkJsonSchema } from '../config/schema-sdk.js';
import { evidenceJsonSchema } from '../review/evidence/schema.js';

/** `npm run schema`: refreshes the shipped JSON Schemas from the config, evidence-pack and audit-record definitions. */
const write = (name: string, schema: unknown) =>
  writeFileSync(new URL(`../../../schema/${name}`, import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
write('gateway.schema.json', gatewayJsonSchema());
write('evidence.v1.schema.json', evidenceJsonSchema());
write('audit-record.v1.schema.json', auditRecordJsonSchema());
write('sdk.schema.json', sdkJsonSchema());
