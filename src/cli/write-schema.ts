import { writeFileSync } from 'node:fs';
import { gatewayJsonSchema } from '../config/schema.js';

/** `npm run schema`: refreshes the shipped JSON Schema from the config definitions. */
writeFileSync(new URL('../../../schema/gateway.schema.json', import.meta.url), `${JSON.stringify(gatewayJsonSchema(), null, 2)}\n`);
