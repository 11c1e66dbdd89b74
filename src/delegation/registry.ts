import type { GatewayConfig } from '../config/schema.js';
import type { ExchangeLock } from '../state/exchange-lock.js';
import { ServiceAccountStrategy } from './service-account.js';
import type { DownstreamStrategy, StrategyName } from './types.js';

export interface StrategyContext {
  config: GatewayConfig;
  baseDir: string;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** The fleet's token-exchange lock (state.redis); absent: this process's single flight only. */
  exchangeLock?: ExchangeLock;
}

/** Makers of the strategies that need more than their config (an IdP client, the gateway's signing keys). */
export type StrategyFactories = Partial<Record<StrategyName, (upstream: string) => DownstreamStrategy>>;

/** Builds each upstream's strategy once, at start (a stdio upstream's credential goes into its child's environment). */
export function buildStrategies(
  ctx: StrategyContext,
  factories: StrategyFactories = {},
): Map<string, DownstreamStrategy> {
  const out = new Map<string, DownstreamStrategy>();
  for (const [name, u] of Object.entries(ctx.config.upstreams)) {
    const d = u.downstream;
    if (d.strategy === 'service-account') out.set(name, new ServiceAccountStrategy(d, ctx.baseDir, ctx.env));
    else if (d.strategy !== 'none') {
      const make = factories[d.strategy];
      if (!make) throw new Error(`upstream ${name}: downstream strategy ${d.strategy} is not available`);
      out.set(name, make(name));
    }
  }
  return out;
}
