// Creates the provider a trigger's spec.build names, with its credentials.
import type { RebuildTriggerSpec } from '../api/v1alpha1/index.ts';
import type { Actor } from '../runtime/impersonation.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { AcrTaskProvider } from './acr.ts';
import { CloudBuildProvider } from './cloudbuild.ts';
import { CodeBuildProvider } from './codebuild.ts';
import { GithubActionsProvider } from './github.ts';
import { GitlabProvider } from './gitlab.ts';
import { JobProvider, TektonProvider } from './incluster.ts';
import { BuildError, type BuildProvider, type ProviderCredentials, type ProviderName } from './types.ts';
import { WebhookProvider } from './webhook.ts';

export const PROVIDERS: readonly ProviderName[] = [
  'acrTask',
  'githubActions',
  'cloudBuild',
  'codeBuild',
  'gitlab',
  'tekton',
  'job',
  'webhook',
];

export function providerName(build: RebuildTriggerSpec['build']): ProviderName | undefined {
  const set = PROVIDERS.filter((p) => build[p] !== undefined);
  return set.length === 1 ? set[0] : undefined;
}

export function createProvider(
  build: RebuildTriggerSpec['build'],
  credentials: ProviderCredentials,
  client: KubeClient,
  /** This instance's webhook endpoint as build services reach it (webhook callbacks). */
  callbackBase?: string,
  /** Who creates build objects in the cluster; undefined: the operator itself. */
  actor?: Actor,
): BuildProvider {
  if (build.acrTask) return new AcrTaskProvider(build.acrTask, credentials);
  if (build.githubActions) return new GithubActionsProvider(build.githubActions, credentials);
  if (build.cloudBuild) return new CloudBuildProvider(build.cloudBuild, credentials);
  if (build.codeBuild) return new CodeBuildProvider(build.codeBuild, credentials);
  if (build.gitlab) return new GitlabProvider(build.gitlab, credentials);
  if (build.tekton) return new TektonProvider(build.tekton, client, actor);
  if (build.job) return new JobProvider(build.job, client, actor);
  if (build.webhook) return new WebhookProvider(build.webhook, credentials, callbackBase);
  throw new BuildError('rejected', 'spec.build names no provider');
}
