import type { CheckId } from '../catalog.js';
import type { ReviewContext } from '../context.js';
import type { CheckOutcome } from '../types.js';
import { bnd01 } from './bnd-01-client-auth-required.js';
import { bnd02 } from './bnd-02-client-credential-strength.js';
import { bnd03 } from './bnd-03-user-identity-required.js';
import { bnd04 } from './bnd-04-user-token-validation.js';
import { bnd05 } from './bnd-05-per-user-authorization.js';
import { bnd06 } from './bnd-06-list-call-consistency.js';
import { bnd07 } from './bnd-07-session-binding.js';
import { bnd08 } from './bnd-08-stream-revalidation.js';
import { bnd09 } from './bnd-09-downstream-user-scoped.js';
import { bnd10 } from './bnd-10-credential-management.js';
import { bnd11 } from './bnd-11-discovery-and-challenges.js';
import { bnd12 } from './bnd-12-transport-hardening.js';

export type CheckFn = (ctx: ReviewContext) => Promise<CheckOutcome>;

/** Filled in check by check; a check not yet here is reported not-assessed by the runner. */
export const CHECK_FUNCTIONS: Partial<Record<CheckId, CheckFn>> = {
  'BND-01': bnd01,
  'BND-02': bnd02,
  'BND-03': bnd03,
  'BND-04': bnd04,
  'BND-05': bnd05,
  'BND-06': bnd06,
  'BND-07': bnd07,
  'BND-08': bnd08,
  'BND-09': bnd09,
  'BND-10': bnd10,
  'BND-11': bnd11,
  'BND-12': bnd12,
};
