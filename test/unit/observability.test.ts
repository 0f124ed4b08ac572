import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { METRICS_DOCS, formattedMetricsDocs, scanMetrics } from '../../scripts/generate-metrics-docs.ts';
import { ROOT } from '../support/fixtures.ts';

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}

describe('metrics reference and Grafana dashboard', () => {
  const metrics = new Map(scanMetrics().map((m) => [m.name, m]));

  it('documents every metric the code registers (run `npm run docs:metrics` after adding one)', async () => {
    assert.ok(metrics.size >= 30, `${metrics.size} metrics found`);
    assert.equal(readFileSync(METRICS_DOCS, 'utf8'), await formattedMetricsDocs());
  });

  it('queries only metrics and labels that exist, and covers what operators watch', () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs', 'grafana', 'patchline.json'), 'utf8')) as Dashboard;
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const names = [
          ...expr.matchAll(/\b((?:patchline|workqueue|controller_runtime|rest_client|leader_election)_[a-z_]+)/g),
        ].map((m) => m[1]!);
        assert.ok(names.length > 0, `${panel.title}: no metric in ${expr}`);
        for (const raw of names) {
          const name = raw.replace(/_(bucket|sum|count)$/, '');
          const metric = metrics.get(name) ?? metrics.get(raw);
          assert.ok(metric, `${panel.title}: unknown metric ${raw}`);
          used.add(metric.name);
          const labels = new Set([...metric.labels, ...(raw.endsWith('_bucket') ? ['le'] : [])]);
          for (const by of expr.matchAll(/by \(([^)]*)\)/g))
            for (const label of by[1]!.split(',').map((l) => l.trim()))
              if (expr.includes(`${raw}`) && names.length === 1)
                assert.ok(labels.has(label), `${panel.title}: ${metric.name} has no label ${label}`);
          for (const sel of expr.matchAll(new RegExp(`${raw}\\{([^}]*)\\}`, 'g')))
            for (const label of sel[1]!.split(',').map((l) => l.split(/[=!~]/)[0]!.trim()))
              assert.ok(labels.has(label), `${panel.title}: ${metric.name} has no label ${label}`);
        }
      }
    }
    for (const needed of [
      'patchline_time_to_landed_seconds',
      'patchline_time_to_committed_seconds',
      'patchline_time_to_applied_seconds',
      'patchline_git_writeback_runs_total',
      'patchline_builds_total',
      'patchline_builds_queued',
      'patchline_pins_total',
      'patchline_registry_requests_total',
      'patchline_registry_ratelimit_remaining',
      'workqueue_depth',
    ])
      assert.ok(used.has(needed), `the dashboard shows ${needed}`);
  });

  it('suggests alerts on metrics and labels that exist (docs/observability.md)', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
    const block = /```yaml\n([\s\S]+?)```/.exec(doc)?.[1] ?? '';
    const rules = (parse(block) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap(
      (g) => g.rules,
    );
    assert.ok(rules.length >= 4);
    for (const rule of rules) {
      for (const m of rule.expr.matchAll(/\b((?:patchline|leader_election)_[a-z_]+)(\{([^}]*)\})?/g)) {
        const metric = metrics.get(m[1]!.replace(/_(bucket|sum|count)$/, ''));
        assert.ok(metric, `${rule.alert}: unknown metric ${m[1]!}`);
        for (const label of (m[3] ?? '')
          .split(',')
          .filter(Boolean)
          .map((l) => l.split(/[=!~]/)[0]!.trim()))
          assert.ok(metric.labels.includes(label), `${rule.alert}: ${metric.name} has no label ${label}`);
      }
    }
  });
});
