// Which policies wait on a digest they do not run themselves: the platform manifests of an index
// they run, or the index of a platform manifest they run (the report that stands for what they
// run may name either). The ImagePolicy reconciler records them as it maps reports to running
// containers; a new report on one of them wakes those policies, as a report on a digest they run
// does. In memory: rebuilt by the first reconcile of each policy after a restart.
export class ReportAliasWatch {
  private readonly byPolicy = new Map<string, readonly string[]>();
  private readonly byDigest = new Map<string, Set<string>>();

  /** The digests whose reports stand for what `policy` runs (replacing what it waited on before). */
  set(policy: string, digests: readonly string[]): void {
    for (const d of this.byPolicy.get(policy) ?? []) {
      const policies = this.byDigest.get(d);
      policies?.delete(policy);
      if (policies?.size === 0) this.byDigest.delete(d);
    }
    if (digests.length === 0) {
      this.byPolicy.delete(policy);
      return;
    }
    this.byPolicy.set(policy, digests);
    for (const d of digests) {
      let policies = this.byDigest.get(d);
      if (!policies) this.byDigest.set(d, (policies = new Set()));
      policies.add(policy);
    }
  }

  /** The policies (namespace/name) a report on `digest` concerns through an index. */
  policiesFor(digest: string): string[] {
    return [...(this.byDigest.get(digest) ?? [])];
  }
}
