// The helm CLI the chart tests use (installed by scripts/install-helm.sh) and the chart.
import { join } from 'node:path';
import { ROOT } from './fixtures.ts';

export const HELM = join(ROOT, '.cache', 'bin', 'helm');
export const CHART = join(ROOT, 'charts', 'patchline');
