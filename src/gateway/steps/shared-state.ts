import { BehalfError } from '../../errors.js';
import type { Step } from '../context.js';

export const checkSharedState: Step = {
  name: 'check_shared_state',
  why: 'before authentication: an instance of a fleet that cannot hear the fleet (Redis away) cannot know whether a key was revoked or the policy reloaded elsewhere, so it refuses (503) instead of serving with what it last knew',
  run(ctx) {
    const fleet = ctx.rt.fleet;
    if (fleet && !fleet.isLive)
      throw new BehalfError('state_unavailable', 'not listening to the fleet changes in force (Redis unavailable)', {
        retryAfter: '1',
      });
  },
};
