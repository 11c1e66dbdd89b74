import type { CheckId } from '../catalog.js';
import type { ReviewContext } from '../context.js';
import type { CheckOutcome } from '../types.js';

export type CheckFn = (ctx: ReviewContext) => Promise<CheckOutcome>;

/** Filled in check by check; a check not yet here is reported not-assessed by the runner. */
export const CHECK_FUNCTIONS: Partial<Record<CheckId, CheckFn>> = {};
