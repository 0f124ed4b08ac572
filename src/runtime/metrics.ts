// Prometheus metrics. Components take the Registry they report to, so that tests can use
// a fresh one; the get-or-create helpers let several instances of a component (one work
// queue per controller, say) share one metric family, told apart by labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export function createRegistry(withProcessMetrics: boolean): Registry {
  const registry = new Registry();
  if (withProcessMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

type CounterConfig<L extends string> = { name: string; help: string; labelNames: readonly L[] };
type GaugeConfig<L extends string> = CounterConfig<L>;
type HistogramConfig<L extends string> = CounterConfig<L> & { buckets?: number[] };

export function counter<L extends string>(registry: Registry, config: CounterConfig<L>): Counter<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing) return existing as Counter<L>;
  return new Counter<L>({ ...config, labelNames: [...config.labelNames], registers: [registry] });
}

export function gauge<L extends string>(registry: Registry, config: GaugeConfig<L>): Gauge<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing) return existing as Gauge<L>;
  return new Gauge<L>({ ...config, labelNames: [...config.labelNames], registers: [registry] });
}

export function histogram<L extends string>(registry: Registry, config: HistogramConfig<L>): Histogram<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing) return existing as Histogram<L>;
  return new Histogram<L>({ ...config, labelNames: [...config.labelNames], registers: [registry] });
}

/** Exponential buckets from `start` seconds, `count` of them, each `factor` times the last. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}
