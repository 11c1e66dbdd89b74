import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CompiledPolicy } from '../policy/policy.js';
import { isKnownMethod, isKnownRule, isKnownTool, LabelFolder, OTHER } from './labels.js';

/** What the gauges read at scrape time: the gateway's live state, counted only when Prometheus asks. */
export interface GaugeSources {
  sessionsByRoute(): Map<string, number>;
  openStreams(): number;
  processesByUpstream(): Map<string, number>;
  auditQueueDepth(): number;
}

/** One decided message, as the metrics see it: ids and codes only. */
export interface DecidedMessage {
  policy: CompiledPolicy;
  upstream: string;
  method: string;
  tool?: string;
  decision: 'allow' | 'deny';
  ruleIds: readonly string[];
  /** The error code of a refusal (rate_limited, forbidden, audit_unavailable…). */
  refusal?: string;
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Revocation sources are named by the code that calls `revocation`; a bounded, fixed-shape set. */
const REVOCATION_SOURCE = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * The gateway's Prometheus metrics (prom-client), in a registry of its own
 * so two gateways in one process (tests, embedders) do not share counters.
 * Labels are upstream names, methods, tool and rule ids the configuration
 * names (else `other`), error codes and outcomes: never a token, a user or an
 * argument value (README, Operating behalf, lists every series).
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly upstreams: ReadonlySet<string>;
  private readonly tools = new LabelFolder();
  private readonly rules = new LabelFolder();
  private readonly methods = new LabelFolder();
  private readonly sources = new LabelFolder();
  private readonly requests: Counter<'route' | 'endpoint' | 'method' | 'transport' | 'status'>;
  private readonly decisions: Counter<'upstream' | 'method' | 'tool' | 'decision' | 'rule'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly mismatches: Counter<'route'>;
  private readonly rateLimited: Counter<'upstream' | 'rule'>;
  private readonly revocations: Counter<'source'>;
  private readonly credentials: Counter<'upstream' | 'strategy' | 'outcome'>;
  private readonly callSeconds: Histogram<'upstream' | 'method'>;
  private readonly upstreamSeconds: Histogram<'upstream'>;
  private readonly policySeconds: Histogram;
  private readonly auditSeconds: Histogram;

  constructor(upstreams: Iterable<string>, gauges: GaugeSources) {
    this.upstreams = new Set(upstreams);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'behalf_http_requests_total',
      help: 'MCP HTTP requests answered, by route, endpoint, HTTP method, transport and status',
      labelNames: ['route', 'endpoint', 'method', 'transport', 'status'],
      registers,
    });
    this.decisions = new Counter({
      name: 'behalf_decisions_total',
      help: 'Messages decided, by upstream, method, tool, decision and deciding rule id (configured ids, else other)',
      labelNames: ['upstream', 'method', 'tool', 'decision', 'rule'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'behalf_auth_failures_total',
      help: 'Requests and messages refused for their credentials, by reason (error code)',
      labelNames: ['reason'],
      registers,
    });
    this.mismatches = new Counter({
      name: 'behalf_session_mismatches_total',
      help: 'Session ids presented by a principal, route or transport they are not bound to',
      labelNames: ['route'],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'behalf_rate_limited_total',
      help: 'Calls refused by a rate limit, by upstream and limit',
      labelNames: ['upstream', 'rule'],
      registers,
    });
    this.revocations = new Counter({
      name: 'behalf_revocations_total',
      help: 'Credentials, keys or sessions revoked, by the source that revoked them',
      labelNames: ['source'],
      registers,
    });
    this.credentials = new Counter({
      name: 'behalf_downstream_credentials_total',
      help: 'Downstream credentials asked of a strategy, by upstream, strategy and outcome (ok, failed)',
      labelNames: ['upstream', 'strategy', 'outcome'],
      registers,
    });
    this.callSeconds = new Histogram({
      name: 'behalf_call_duration_seconds',
      help: 'One message through the gateway, from its first step to its answer, by upstream and method',
      labelNames: ['upstream', 'method'],
      buckets: SECONDS,
      registers,
    });
    this.upstreamSeconds = new Histogram({
      name: 'behalf_upstream_duration_seconds',
      help: 'Time the upstream took to answer a forwarded request, by upstream',
      labelNames: ['upstream'],
      buckets: SECONDS,
      registers,
    });
    this.policySeconds = new Histogram({
      name: 'behalf_policy_evaluation_seconds',
      help: 'Time to authorize one message (method table and policy rules)',
      buckets: SECONDS,
      registers,
    });
    this.auditSeconds = new Histogram({
      name: 'behalf_audit_append_seconds',
      help: 'Time to put a decision on the audit record (the write every call waits for)',
      buckets: SECONDS,
      registers,
    });
    new Gauge({
      name: 'behalf_open_sessions',
      help: 'Sessions open on this instance, by route',
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const [route, n] of gauges.sessionsByRoute()) this.set({ route }, n);
      },
    });
    new Gauge({
      name: 'behalf_open_streams',
      help: 'SSE streams open to clients on this instance (GET streams and streaming POST answers)',
      registers,
      collect() {
        this.set(gauges.openStreams());
      },
    });
    new Gauge({
      name: 'behalf_upstream_processes',
      help: 'Per-user stdio upstream processes running, by upstream',
      labelNames: ['upstream'],
      registers,
      collect() {
        this.reset();
        for (const [upstream, n] of gauges.processesByUpstream()) this.set({ upstream }, n);
      },
    });
    new Gauge({
      name: 'behalf_audit_queue_depth',
      help: 'Audit records handed to the store and not yet confirmed',
      registers,
      collect() {
        this.set(gauges.auditQueueDepth());
      },
    });
  }

  private upstream(name: string): string {
    return this.upstreams.has(name) ? name : OTHER;
  }

  httpRequest(route: string, endpoint: string, method: string, transport: string, status: number): void {
    this.requests.inc({ route: this.upstream(route), endpoint, method, transport, status: String(status) });
  }

  authFailure(reason: string): void {
    this.authFailures.inc({ reason });
  }

  sessionMismatch(route: string): void {
    this.mismatches.inc({ route: this.upstream(route) });
  }

  /** Called by whatever revokes (admin endpoint, CLI-announced change, introspection, Shared Signals, JWKS withdrawal). */
  revocation(source: string): void {
    this.revocations.inc({ source: this.sources.fold(source, (s) => REVOCATION_SOURCE.test(s)) });
  }

  credential(upstream: string, strategy: string, ok: boolean): void {
    this.credentials.inc({ upstream: this.upstream(upstream), strategy, outcome: ok ? 'ok' : 'failed' });
  }

  decided(d: DecidedMessage): void {
    const upstream = this.upstream(d.upstream);
    const method = this.methods.fold(d.method, (v) => isKnownMethod(d.policy, v));
    const rule = this.rules.fold(d.ruleIds[0], (v) => isKnownRule(d.policy, v));
    const tool = d.tool === undefined ? 'none' : this.tools.fold(d.tool, (v) => isKnownTool(d.policy, v));
    this.decisions.inc({ upstream, method, tool, decision: d.decision, rule });
    if (d.refusal === 'rate_limited') this.rateLimited.inc({ upstream, rule });
  }

  callTime(upstream: string, policy: CompiledPolicy, method: string, seconds: number): void {
    const m = this.methods.fold(method, (v) => isKnownMethod(policy, v));
    this.callSeconds.observe({ upstream: this.upstream(upstream), method: m }, seconds);
  }

  /** A message step's time, for the steps that have a histogram of their own. */
  stepTime(step: string, upstream: string, seconds: number): void {
    if (step === 'forward') this.upstreamSeconds.observe({ upstream: this.upstream(upstream) }, seconds);
    else if (step === 'authorize') this.policySeconds.observe(seconds);
    else if (step === 'record_decision') this.auditSeconds.observe(seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
