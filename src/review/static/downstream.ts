import { nameSuggestsSecret } from '../../config/literal-secrets.js';
import type { ReviewContext } from '../context.js';
import type { EvidenceItem } from '../types.js';
import { configReview, unreadableItem, type UpstreamView } from './config-review.js';

/**
 * BND-09's static part: what each upstream in the config receives, read from
 * its downstream strategy (docs/architecture.md §5). A credential derived per user
 * (token exchange, a user assertion, a per-user child holding the user's
 * credential) is what the check wants; one credential for everyone is the
 * gap, whether declared (service-account) or smuggled in (static headers, a
 * secret in every child's environment).
 */
export function staticDownstreamEvidence(ctx: ReviewContext): EvidenceItem[] {
  const review = configReview(ctx);
  if (!review) return [];
  if (review.error) return [unreadableItem(review, 'downstream credential strategies in the config')];
  const items = review.upstreams.map((u) => upstreamItem(u, review.file));
  if (!items.length) items.push({ outcome: 'not-assessed', probe: 'downstream credential strategies in the config', detail: 'the config declares no upstreams', location: { file: review.file, path: 'upstreams' } });
  return items;
}

function upstreamItem(u: UpstreamView, file: string): EvidenceItem {
  const probe = `downstream credential of upstream ${u.name} (${u.transport})`;
  const location = { file, path: `upstreams.${u.name}.downstream` };
  const expected = 'a credential derived per user (token-exchange, user-assertion, or a per-user process with the user\'s credential)';
  const shared = sharedCredentials(u);
  if (u.strategy === 'service-account') {
    return { outcome: 'bad', probe, expected, observed: 'strategy: service-account', detail: 'one credential for every user: the upstream cannot tell users apart, and each user reaches what the service account reaches', location };
  }
  if (u.strategy === 'token-exchange' || u.strategy === 'user-assertion') {
    if (u.transport === 'stdio' && !u.credentialEnv) {
      return { outcome: 'info', probe, observed: `strategy: ${u.strategy}; perUser.credentialEnv not set`, detail: 'the strategy is declared but the child never receives its credential: set perUser.credentialEnv', location: { file, path: `upstreams.${u.name}.perUser` } };
    }
    const how = u.transport === 'stdio' ? `a per-user process, the user's credential in ${u.credentialEnv}` : u.strategy === 'token-exchange' ? 'an RFC 8693 token for the user' : 'a short-lived assertion about the user, signed by the gateway';
    const extra = shared.length ? `; it also receives ${shared.join(', ')}, the same for every user` : '';
    return { outcome: 'ok', probe, expected, observed: `strategy: ${u.strategy} (${how})`, ...(extra ? { detail: extra.slice(2) } : {}), location };
  }
  if (u.strategy !== 'none') {
    return { outcome: 'not-assessed', probe, observed: `strategy: ${u.strategy}`, detail: 'a strategy this review does not know', location };
  }
  if (shared.length) {
    return { outcome: 'bad', probe, expected, observed: `strategy: none, but ${shared.join(', ')}`, detail: 'one credential for every user: a service account in all but name', location: { file, path: `upstreams.${u.name}` } };
  }
  const perUser = u.transport === 'stdio' ? ' (a child per user session)' : '';
  return { outcome: 'info', probe, observed: `strategy: none${perUser}`, detail: 'the upstream receives no credential from the gateway: it needs none, or it relies on something this review cannot see', location };
}

/** Credentials every user's requests carry alike: static headers, secret-named variables set or inherited for every child. */
function sharedCredentials(u: UpstreamView): string[] {
  if (u.transport !== 'stdio') return Object.keys(u.headers).length ? [`static headers ${Object.keys(u.headers).join(', ')}`] : [];
  const names = [...Object.keys(u.env), ...u.envAllow].filter((n) => n !== u.credentialEnv && nameSuggestsSecret(n));
  return names.length ? [`environment ${[...new Set(names)].join(', ')}`] : [];
}
