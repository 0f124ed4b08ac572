// Root hooks of the end-to-end suite: one control plane for the whole run.
import { setUp, tearDown, env } from './support/env.ts';

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(300_000);
    await setUp();
    console.log(`    control plane ready in ${env().cp.startupMs} ms (${env().cp.server})`);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await tearDown();
  },
};
