// The cloud build providers against nock, with request and response shapes from each
// service's documentation (reference/build-and-registry-apis.md): success, failure,
// cancellation, refused credentials, throttling and unknown run ids.
import assert from 'node:assert/strict';
import nock from 'nock';
import { ACR_TASKS_API_VERSION, AcrTaskProvider } from '../../../src/builders/acr.ts';
import { BUILD_ID_SUBSTITUTION, CloudBuildProvider } from '../../../src/builders/cloudbuild.ts';
import { BUILD_ID_VARIABLE as CODEBUILD_ID, CodeBuildProvider } from '../../../src/builders/codebuild.ts';
import { BUILD_ID_INPUT, GithubActionsProvider } from '../../../src/builders/github.ts';
import { BUILD_ID_VARIABLE as GITLAB_ID, GitlabProvider } from '../../../src/builders/gitlab.ts';
import { correlationId } from '../../../src/builders/request.ts';
import { BuildError, type BuildRequest } from '../../../src/builders/types.ts';

const BASE_DIGEST = `sha256:${'b'.repeat(64)}`;
const OUT_DIGEST = `sha256:${'e'.repeat(64)}`;

function request(target = 'shopregistry.azurecr.io/shop/web:1.4'): BuildRequest {
  return {
    correlationId: correlationId('uid-1', 'rev1', 1),
    attempt: 1,
    trigger: { namespace: 'shop', name: 'web', uid: 'uid-1' },
    base: {
      image: 'mcr.microsoft.com/dotnet/aspnet:8.0',
      digest: BASE_DIGEST,
      ref: `mcr.microsoft.com/dotnet/aspnet@${BASE_DIGEST}`,
    },
    target: { image: target },
    requestedAt: new Date(),
    timeoutMs: 3_600_000,
  };
}

const rejected = (kind: BuildError['kind'], message?: RegExp) => (err: unknown) =>
  err instanceof BuildError && err.kind === kind && (!message || message.test(err.message));

describe('cloud build providers (nock)', () => {
  before(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());
  after(() => nock.enableNetConnect());

  describe('Azure Container Registry Tasks (ARM REST)', () => {
    const spec = {
      subscriptionId: '3f2a1c9e-8b7d-4e6f-a5c4-2b1d0e9f8a7c',
      resourceGroup: 'shop-prod',
      registry: 'shopregistry',
      taskName: 'build-web',
      arguments: { BASE_IMAGE: '$(base.ref)' },
    };
    const prefix = `/subscriptions/${spec.subscriptionId}/resourceGroups/shop-prod/providers/Microsoft.ContainerRegistry/registries/shopregistry`;
    const provider = () =>
      new AcrTaskProvider(spec, undefined, { tokens: { getToken: () => Promise.resolve({ token: 'arm-token' }) } });
    const req = request();
    const taskRun = `${prefix}/taskRuns/patchline-${req.correlationId}`;
    const run = (status: string, extra: object = {}) => ({
      id: `${prefix}/runs/ca12`,
      name: 'ca12',
      type: 'Microsoft.ContainerRegistry/registries/runs',
      properties: { runId: 'ca12', status, lastUpdatedTime: '2026-11-22T02:00:00Z', runType: 'QuickRun', ...extra },
    });

    it('runs the task as a TaskRun named after the correlation id, with substituted arguments', async () => {
      const scope = nock('https://management.azure.com')
        .put(
          taskRun,
          (body: {
            properties: {
              runRequest: { type: string; taskId: string; overrideTaskStepProperties: { arguments: unknown[] } };
            };
          }) => {
            const r = body.properties.runRequest;
            return (
              r.type === 'TaskRunRequest' &&
              r.taskId === `${prefix}/tasks/build-web` &&
              JSON.stringify(r.overrideTaskStepProperties.arguments) ===
                JSON.stringify([{ name: 'BASE_IMAGE', value: req.base.ref, isSecret: false }])
            );
          },
        )
        .query({ 'api-version': ACR_TASKS_API_VERSION })
        .matchHeader('authorization', 'Bearer arm-token')
        .reply(200, {
          name: `patchline-${req.correlationId}`,
          properties: { provisioningState: 'Succeeded', runResult: run('Queued') },
        });
      const handle = await provider().start(req);
      assert.equal(handle.id, 'ca12');
      assert.ok(scope.isDone());
    });

    it('finds the run of an interrupted start by the TaskRun name, and nothing when there is none', async () => {
      nock('https://management.azure.com')
        .get(taskRun)
        .query(true)
        .reply(200, { properties: { runResult: run('Running') } })
        .get(taskRun)
        .query(true)
        .reply(404, { error: { code: 'ResourceNotFound', message: 'not found' } });
      assert.equal((await provider().find(req))?.id, 'ca12');
      assert.equal(await provider().find(req), undefined);
    });

    it('follows a run to success and reads the output digest', async () => {
      nock('https://management.azure.com')
        .get(`${prefix}/runs/ca12`)
        .query(true)
        .reply(200, run('Running'))
        .get(`${prefix}/runs/ca12`)
        .query(true)
        .reply(
          200,
          run('Succeeded', {
            outputImages: [
              { registry: 'shopregistry.azurecr.io', repository: 'shop/web', tag: '1.4', digest: OUT_DIGEST },
            ],
          }),
        );
      assert.equal((await provider().status(req, { id: 'ca12' })).phase, 'Running');
      const done = await provider().status(req, { id: 'ca12' });
      assert.equal(done.phase, 'Succeeded');
      assert.equal(done.outputDigest, OUT_DIGEST);
      assert.match(done.url ?? '', /portal\.azure\.com/);
    });

    it('reports a failed run with its error message, and a cancelled run', async () => {
      nock('https://management.azure.com')
        .get(`${prefix}/runs/ca12`)
        .query(true)
        .reply(200, run('Failed', { runErrorMessage: 'failed to push: unauthorized' }))
        .get(`${prefix}/runs/ca12`)
        .query(true)
        .reply(200, run('Canceled'));
      const failed = await provider().status(req, { id: 'ca12' });
      assert.equal(failed.phase, 'Failed');
      assert.equal(failed.message, 'failed to push: unauthorized');
      assert.equal((await provider().status(req, { id: 'ca12' })).phase, 'Cancelled');
    });

    it('says so for an unknown run id', async () => {
      nock('https://management.azure.com')
        .get(`${prefix}/runs/nope`)
        .query(true)
        .reply(404, { error: { code: 'ResourceNotFound' } });
      assert.equal((await provider().status(req, { id: 'nope' })).phase, 'Unknown');
    });

    it('classifies refused credentials, a missing task, throttling and outages', async () => {
      nock('https://management.azure.com')
        .put(taskRun)
        .query(true)
        .reply(403, {
          error: {
            code: 'AuthorizationFailed',
            message:
              "The client does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/taskRuns/write'",
          },
        })
        .put(taskRun)
        .query(true)
        .reply(404, { error: { code: 'ResourceNotFound', message: 'task build-web not found' } })
        .put(taskRun)
        .query(true)
        .reply(429, { error: { code: 'TooManyRequests' } }, { 'retry-after': '17' })
        .put(taskRun)
        .query(true)
        .reply(503, { error: { code: 'ServiceUnavailable' } });
      await assert.rejects(
        provider().start(req),
        rejected('rejected', /refused the credentials \(HTTP 403\).*taskRuns\/write/),
      );
      await assert.rejects(provider().start(req), rejected('rejected', /not found/));
      await assert.rejects(
        provider().start(req),
        (err: unknown) => rejected('throttled')(err) && (err as BuildError).retryAfterMs === 17_000,
      );
      await assert.rejects(provider().start(req), rejected('unavailable', /HTTP 503/));
    });
  });

  describe('GitHub Actions (workflow_dispatch)', () => {
    const spec = {
      owner: 'acme',
      repository: 'storefront',
      workflow: 'rebuild.yaml',
      ref: 'main',
      inputs: { base_image: '$(base.ref)' },
    };
    const provider = () => new GithubActionsProvider(spec, { token: 'ghp_test' });
    const req = request('ghcr.io/acme/storefront:main');
    const api = () => nock('https://api.github.com').matchHeader('authorization', 'Bearer ghp_test');

    it('dispatches with the correlation input and gets the run id back', async () => {
      const scope = api()
        .post(
          '/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches',
          (b: { ref: string; inputs: Record<string, string>; return_run_details: boolean }) => {
            return (
              b.ref === 'main' &&
              b.return_run_details === true &&
              b.inputs[BUILD_ID_INPUT] === req.correlationId &&
              b.inputs.base_image === req.base.ref
            );
          },
        )
        .reply(200, {
          workflow_run_id: 22334455,
          run_url: 'https://api.github.com/repos/acme/storefront/actions/runs/22334455',
          html_url: 'https://github.com/acme/storefront/actions/runs/22334455',
        });
      const handle = await provider().start(req);
      assert.deepEqual(handle, { id: '22334455', url: 'https://github.com/acme/storefront/actions/runs/22334455' });
      assert.ok(scope.isDone());
    });

    it('falls back to a plain dispatch on servers without run details, and finds the run by its run name', async () => {
      api()
        .post('/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches')
        .reply(422, { message: 'Invalid request.\n\n"return_run_details" is not a permitted key.' })
        .post(
          '/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches',
          (b: Record<string, unknown>) => !('return_run_details' in b),
        )
        .reply(204)
        .get('/repos/acme/storefront/actions/workflows/rebuild.yaml/runs')
        .query(true)
        .reply(200, {
          total_count: 2,
          workflow_runs: [
            {
              id: 1,
              display_title: 'rebuild plffffffffffffffff',
              status: 'completed',
              conclusion: 'success',
              html_url: 'https://github.com/x/1',
            },
            {
              id: 2,
              display_title: `rebuild ${req.correlationId}`,
              status: 'in_progress',
              conclusion: null,
              html_url: 'https://github.com/x/2',
            },
          ],
        })
        .get('/repos/acme/storefront/actions/runs/2')
        .reply(200, { id: 2, status: 'in_progress', conclusion: null, html_url: 'https://github.com/x/2' });
      const handle = await provider().start(req);
      assert.match(handle.id, /^dispatched:/);
      const status = await provider().status(req, handle);
      assert.equal(status.phase, 'Running');
      assert.deepEqual(status.handle, { id: '2', url: 'https://github.com/x/2' });
    });

    it('maps run states and conclusions', async () => {
      const cases: [object, string][] = [
        [{ status: 'queued', conclusion: null }, 'Queued'],
        [{ status: 'completed', conclusion: 'success' }, 'Succeeded'],
        [{ status: 'completed', conclusion: 'failure' }, 'Failed'],
        [{ status: 'completed', conclusion: 'timed_out' }, 'Failed'],
        [{ status: 'completed', conclusion: 'cancelled' }, 'Cancelled'],
      ];
      for (const [run, phase] of cases) {
        api()
          .get('/repos/acme/storefront/actions/runs/7')
          .reply(200, { id: 7, ...run, html_url: 'https://github.com/x/7' });
        assert.equal((await provider().status(req, { id: '7' })).phase, phase, JSON.stringify(run));
      }
      api().get('/repos/acme/storefront/actions/runs/404404').reply(404, { message: 'Not Found' });
      assert.equal((await provider().status(req, { id: '404404' })).phase, 'Unknown');
    });

    it('classifies a bad token, a missing workflow, and rate limits (403 with x-ratelimit-remaining: 0, and 429)', async () => {
      const reset = Math.floor(Date.now() / 1000) + 60;
      api()
        .post('/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches')
        .reply(401, { message: 'Bad credentials' })
        .post('/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches')
        .reply(404, { message: 'Not Found' })
        .post('/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches')
        .reply(
          403,
          { message: 'API rate limit exceeded' },
          { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
        )
        .post('/repos/acme/storefront/actions/workflows/rebuild.yaml/dispatches')
        .reply(429, { message: 'secondary rate limit' }, { 'retry-after': '30' });
      await assert.rejects(provider().start(req), rejected('rejected', /Bad credentials/));
      await assert.rejects(provider().start(req), rejected('rejected', /workflow rebuild\.yaml not found/));
      await assert.rejects(
        provider().start(req),
        (err: unknown) => rejected('throttled')(err) && ((err as BuildError).retryAfterMs ?? 0) > 30_000,
      );
      await assert.rejects(
        provider().start(req),
        (err: unknown) => rejected('throttled')(err) && (err as BuildError).retryAfterMs === 30_000,
      );
    });

    it('needs a token', () => {
      assert.throws(() => new GithubActionsProvider(spec, undefined), /needs a token/);
    });
  });

  describe('Google Cloud Build', () => {
    const spec = {
      projectId: 'acme-builds',
      location: 'europe-west1',
      triggerId: 'rebuild-web',
      substitutions: { _BASE: '$(base.ref)' },
    };
    const provider = () => new CloudBuildProvider(spec, undefined, { tokens: () => Promise.resolve('ya29.token') });
    const req = request('europe-docker.pkg.dev/acme-builds/images/web:stable');
    const api = () => nock('https://cloudbuild.googleapis.com').matchHeader('authorization', 'Bearer ya29.token');
    const parent = '/v1/projects/acme-builds/locations/europe-west1';

    it('runs the trigger with the correlation substitution; the operation carries the build id', async () => {
      api()
        .post(
          `${parent}/triggers/rebuild-web:run`,
          (b: { source: { substitutions: Record<string, string> } }) =>
            b.source.substitutions[BUILD_ID_SUBSTITUTION] === req.correlationId &&
            b.source.substitutions._BASE === req.base.ref,
        )
        .reply(200, {
          name: 'projects/acme-builds/locations/europe-west1/operations/op-1',
          metadata: {
            '@type': 'type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata',
            build: {
              id: 'b-123',
              status: 'QUEUED',
              logUrl: 'https://console.cloud.google.com/cloud-build/builds/b-123',
            },
          },
        });
      assert.deepEqual(await provider().start(req), {
        id: 'b-123',
        url: 'https://console.cloud.google.com/cloud-build/builds/b-123',
      });
    });

    it("finds a build by its substitution among the trigger's recent builds", async () => {
      api()
        .get(`${parent}/builds`)
        .query(true)
        .reply(200, {
          builds: [
            { id: 'other', substitutions: { [BUILD_ID_SUBSTITUTION]: 'plx' } },
            { id: 'b-123', substitutions: { [BUILD_ID_SUBSTITUTION]: req.correlationId } },
          ],
        })
        .get(`${parent}/builds`)
        .query(true)
        .reply(200, {});
      assert.equal((await provider().find(req))?.id, 'b-123');
      assert.equal(await provider().find(req), undefined);
    });

    it('follows a build to success with its image digest, and reports failures, cancellation and unknown ids', async () => {
      api()
        .get(`${parent}/builds/b-123`)
        .reply(200, { id: 'b-123', status: 'WORKING' })
        .get(`${parent}/builds/b-123`)
        .reply(200, {
          id: 'b-123',
          status: 'SUCCESS',
          results: { images: [{ name: 'europe-docker.pkg.dev/acme-builds/images/web:stable', digest: OUT_DIGEST }] },
        })
        .get(`${parent}/builds/b-123`)
        .reply(200, {
          id: 'b-123',
          status: 'FAILURE',
          failureInfo: { type: 'USER_BUILD_STEP', detail: 'Build step 2 "docker push" failed' },
        })
        .get(`${parent}/builds/b-123`)
        .reply(200, { id: 'b-123', status: 'CANCELLED' })
        .get(`${parent}/builds/missing`)
        .reply(404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
      assert.equal((await provider().status(req, { id: 'b-123' })).phase, 'Running');
      const ok = await provider().status(req, { id: 'b-123' });
      assert.equal(ok.outputDigest, OUT_DIGEST);
      const failed = await provider().status(req, { id: 'b-123' });
      assert.equal(failed.phase, 'Failed');
      assert.match(failed.message ?? '', /docker push/);
      assert.equal((await provider().status(req, { id: 'b-123' })).phase, 'Cancelled');
      assert.equal((await provider().status(req, { id: 'missing' })).phase, 'Unknown');
    });

    it('classifies permission errors and throttling', async () => {
      api()
        .post(`${parent}/triggers/rebuild-web:run`)
        .reply(403, {
          error: { code: 403, message: "Permission 'cloudbuild.builds.create' denied", status: 'PERMISSION_DENIED' },
        })
        .post(`${parent}/triggers/rebuild-web:run`)
        .reply(429, { error: { code: 429, status: 'RESOURCE_EXHAUSTED' } });
      await assert.rejects(provider().start(req), rejected('rejected', /cloudbuild\.builds\.create/));
      await assert.rejects(provider().start(req), rejected('throttled'));
    });
  });

  describe('AWS CodeBuild (SDK, SigV4)', () => {
    const spec = { region: 'eu-west-1', projectName: 'web-image', environment: { BASE_IMAGE: '$(base.ref)' } };
    const creds = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
    const provider = () => new CodeBuildProvider(spec, creds);
    const req = request('123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4');
    const api = (target: string) =>
      nock('https://codebuild.eu-west-1.amazonaws.com')
        .post('/')
        .matchHeader('x-amz-target', `CodeBuild_20161006.${target}`)
        .matchHeader(
          'authorization',
          /^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE\/\d+\/eu-west-1\/codebuild\/aws4_request/,
        );
    const json = { 'content-type': 'application/x-amz-json-1.1' };

    it('starts with the correlation id as idempotency token and environment variable', async () => {
      api('StartBuild').reply(
        200,
        {
          build: {
            id: 'web-image:0d3f',
            arn: 'arn:aws:codebuild:eu-west-1:123456789012:build/web-image:0d3f',
            buildStatus: 'IN_PROGRESS',
          },
        },
        json,
      );
      const handle = await provider().start(req);
      assert.equal(handle.id, 'web-image:0d3f');
      assert.match(handle.url ?? '', /console\.aws\.amazon\.com\/codesuite\/codebuild\/projects\/web-image\/build/);
    });

    it('sends the idempotency token and overrides', async () => {
      let body: Record<string, unknown> = {};
      nock('https://codebuild.eu-west-1.amazonaws.com')
        .post('/', (b: Record<string, unknown>) => {
          body = b;
          return true;
        })
        .reply(200, { build: { id: 'web-image:1' } }, json);
      await provider().start(req);
      assert.equal(body.idempotencyToken, req.correlationId);
      assert.deepEqual(body.environmentVariablesOverride, [
        { name: 'BASE_IMAGE', value: req.base.ref, type: 'PLAINTEXT' },
        { name: CODEBUILD_ID, value: req.correlationId, type: 'PLAINTEXT' },
      ]);
    });

    it('follows a build to success with the exported digest, and to failure with the failing phase', async () => {
      api('BatchGetBuilds')
        .reply(
          200,
          {
            builds: [
              {
                id: 'web-image:1',
                buildStatus: 'SUCCEEDED',
                exportedEnvironmentVariables: [{ name: 'IMAGE_DIGEST', value: OUT_DIGEST }],
              },
            ],
            buildsNotFound: [],
          },
          json,
        )
        .post('/')
        .reply(
          200,
          {
            builds: [
              {
                id: 'web-image:1',
                buildStatus: 'FAILED',
                phases: [
                  {
                    phaseType: 'BUILD',
                    phaseStatus: 'FAILED',
                    contexts: [
                      { statusCode: 'COMMAND_EXECUTION_ERROR', message: 'Error while executing command: docker push' },
                    ],
                  },
                ],
              },
            ],
          },
          json,
        )
        .post('/')
        .reply(200, { builds: [{ id: 'web-image:1', buildStatus: 'STOPPED' }] }, json)
        .post('/')
        .reply(200, { builds: [], buildsNotFound: ['web-image:nope'] }, json);
      const ok = await provider().status(req, { id: 'web-image:1' });
      assert.equal(ok.phase, 'Succeeded');
      assert.equal(ok.outputDigest, OUT_DIGEST);
      const failed = await provider().status(req, { id: 'web-image:1' });
      assert.equal(failed.phase, 'Failed');
      assert.match(failed.message ?? '', /BUILD: Error while executing command: docker push/);
      assert.equal((await provider().status(req, { id: 'web-image:1' })).phase, 'Cancelled');
      assert.equal((await provider().status(req, { id: 'web-image:nope' })).phase, 'Unknown');
    });

    it('finds a build by its environment variable', async () => {
      api('ListBuildsForProject').reply(200, { ids: ['web-image:2', 'web-image:1'] }, json);
      nock('https://codebuild.eu-west-1.amazonaws.com')
        .post('/')
        .reply(
          200,
          {
            builds: [
              {
                id: 'web-image:2',
                startTime: Date.now() / 1000,
                environment: { environmentVariables: [{ name: CODEBUILD_ID, value: 'plother' }] },
              },
              {
                id: 'web-image:1',
                startTime: Date.now() / 1000,
                environment: { environmentVariables: [{ name: CODEBUILD_ID, value: req.correlationId }] },
              },
            ],
          },
          json,
        );
      assert.equal((await provider().find(req))?.id, 'web-image:1');
    });

    it('classifies a missing project, denied access and throttling by their AWS error names', async () => {
      api('StartBuild').reply(
        400,
        {
          __type: 'ResourceNotFoundException',
          message: 'Project cannot be found: arn:aws:codebuild:eu-west-1:123456789012:project/web-image',
        },
        json,
      );
      await assert.rejects(provider().start(req), rejected('rejected', /ResourceNotFoundException/));
      api('StartBuild').reply(
        400,
        { __type: 'AccessDeniedException', message: 'not authorized to perform: codebuild:StartBuild' },
        json,
      );
      await assert.rejects(provider().start(req), rejected('rejected', /AccessDeniedException/));
      api('StartBuild').reply(400, { __type: 'ThrottlingException', message: 'Rate exceeded' }, json);
      await assert.rejects(provider().start(req), rejected('throttled'));
    });
  });

  describe('GitLab pipelines', () => {
    const spec = {
      url: 'https://gitlab.example.com',
      projectId: '42',
      ref: 'main',
      variables: { BASE_IMAGE: '$(base.ref)' },
    };
    const provider = () => new GitlabProvider(spec, { token: 'glpat-test' });
    const req = request('registry.gitlab.example.com/shop/web:1.4');
    const api = () => nock('https://gitlab.example.com').matchHeader('private-token', 'glpat-test');

    it('creates a pipeline with the correlation variable', async () => {
      api()
        .post(
          '/api/v4/projects/42/pipeline',
          (b: { ref: string; variables: { key: string; value: string }[] }) =>
            b.ref === 'main' && b.variables.some((v) => v.key === GITLAB_ID && v.value === req.correlationId),
        )
        .reply(201, {
          id: 1001,
          iid: 7,
          status: 'created',
          web_url: 'https://gitlab.example.com/shop/web/-/pipelines/1001',
        });
      assert.deepEqual(await provider().start(req), {
        id: '1001',
        url: 'https://gitlab.example.com/shop/web/-/pipelines/1001',
      });
    });

    it('finds a pipeline by its variable', async () => {
      api()
        .get('/api/v4/projects/42/pipelines')
        .query(true)
        .reply(200, [
          { id: 1002, web_url: 'u2' },
          { id: 1001, web_url: 'u1' },
        ])
        .get('/api/v4/projects/42/pipelines/1002/variables')
        .reply(200, [{ key: GITLAB_ID, value: 'plother' }])
        .get('/api/v4/projects/42/pipelines/1001/variables')
        .reply(200, [{ key: GITLAB_ID, value: req.correlationId }]);
      assert.deepEqual(await provider().find(req), { id: '1001', url: 'u1' });
    });

    it('maps pipeline states, and unknown ids', async () => {
      for (const [raw, phase] of [
        ['pending', 'Queued'],
        ['running', 'Running'],
        ['success', 'Succeeded'],
        ['failed', 'Failed'],
        ['canceled', 'Cancelled'],
      ]) {
        api().get('/api/v4/projects/42/pipelines/1001').reply(200, { id: 1001, status: raw, web_url: 'u' });
        assert.equal((await provider().status(req, { id: '1001' })).phase, phase);
      }
      api().get('/api/v4/projects/42/pipelines/999').reply(404, { message: '404 Not found' });
      assert.equal((await provider().status(req, { id: '999' })).phase, 'Unknown');
    });

    it('classifies a bad token, a missing project and throttling', async () => {
      api()
        .post('/api/v4/projects/42/pipeline')
        .reply(401, { message: '401 Unauthorized' })
        .post('/api/v4/projects/42/pipeline')
        .reply(404, { message: '404 Project Not Found' })
        .post('/api/v4/projects/42/pipeline')
        .reply(429, { message: 'Retry later' }, { 'retry-after': '5' });
      await assert.rejects(provider().start(req), rejected('rejected', /401 Unauthorized/));
      await assert.rejects(provider().start(req), rejected('rejected', /project 42 not found/));
      await assert.rejects(provider().start(req), rejected('throttled'));
    });
  });
});
