import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('config', () => {
  it('has production defaults', () => {
    const c = loadConfig([], { POD_NAME: 'patchline-7d9f-abc', POD_NAMESPACE: 'patchline-system' });
    assert.equal(c.identity, 'patchline-7d9f-abc');
    assert.equal(c.namespace, 'patchline-system');
    assert.deepEqual(c.leaderElection, {
      enabled: true,
      leaseName: 'patchline-leader',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    assert.deepEqual(c.probe, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(c.watchNamespaces, []);
    assert.equal(c.workers, 4);
  });

  it('takes flags over environment over defaults', () => {
    const c = loadConfig(['--workers', '8', '--probe-address', '127.0.0.1:0'], {
      PATCHLINE_WORKERS: '2',
      PATCHLINE_LOG_LEVEL: 'debug',
      PATCHLINE_WATCH_NAMESPACES: 'shop, billing',
    });
    assert.equal(c.workers, 8);
    assert.deepEqual(c.probe, { host: '127.0.0.1', port: 0 });
    assert.equal(c.log.level, 'debug');
    assert.deepEqual(c.watchNamespaces, ['shop', 'billing']);
  });

  it('reports every problem at once, naming flag and variable', () => {
    try {
      loadConfig(['--lease-duration', '5s', '--renew-deadline', '10s'], {
        PATCHLINE_WORKERS: 'many',
        PATCHLINE_PROBE_ADDRESS: 'localhost',
        PATCHLINE_LOG_FORMAT: 'xml',
        PATCHLINE_WATCH_NAMESPACES: 'Shop',
        PATCHLINE_RETRY_PERIOD: 'soon',
      });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const text = err.problems.join('\n');
      assert.match(text, /--workers \/ PATCHLINE_WORKERS: "many" must be a whole number/);
      assert.match(text, /--probe-address \/ PATCHLINE_PROBE_ADDRESS: "localhost" is not host:port/);
      assert.match(text, /--log-format \/ PATCHLINE_LOG_FORMAT: "xml" is not one of json, text, auto/);
      assert.match(text, /PATCHLINE_WATCH_NAMESPACES: "Shop" is not a valid namespace name/);
      assert.match(text, /--retry-period \/ PATCHLINE_RETRY_PERIOD: invalid duration "soon"/);
      assert.equal(err.problems.length, 5);
    }
  });

  it('takes a shard selector and refuses one the API server would', () => {
    assert.equal(loadConfig([], {}).watchLabelSelector, '');
    const c = loadConfig(['--watch-label-selector', 'patchline.dev/shard in (one, two)'], {});
    assert.equal(c.watchLabelSelector, 'patchline.dev/shard in (one, two)');
    assert.equal(
      loadConfig([], { PATCHLINE_WATCH_LABEL_SELECTOR: '!patchline.dev/shard' }).watchLabelSelector,
      '!patchline.dev/shard',
    );
    assert.throws(
      () => loadConfig(['--watch-label-selector', 'patchline.dev/shard=one,'], {}),
      /--watch-label-selector \/ PATCHLINE_WATCH_LABEL_SELECTOR: "patchline.dev\/shard=one," is not a label selector: empty requirement/,
    );
  });

  it('takes the callback address of build services, and refuses one that is no http(s) URL', () => {
    assert.equal(loadConfig([], {}).buildCallbackURL, '');
    assert.equal(
      loadConfig([], { PATCHLINE_BUILD_CALLBACK_URL: 'http://patchline-webhooks.patchline-system.svc/' })
        .buildCallbackURL,
      'http://patchline-webhooks.patchline-system.svc',
    );
    assert.throws(
      () => loadConfig(['--build-callback-url', 'patchline-webhooks:80'], {}),
      /--build-callback-url \/ PATCHLINE_BUILD_CALLBACK_URL: "patchline-webhooks:80" is not an http\(s\) URL/,
    );
  });

  it('checks the leader election timings against each other', () => {
    assert.throws(
      () => loadConfig(['--lease-duration', '5s', '--renew-deadline', '10s'], {}),
      /lease duration > renew deadline > retry period/,
    );
  });

  it('rejects unknown flags and lists the known ones', () => {
    assert.throws(
      () => loadConfig(['--leader-election'], {}),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /Unknown option '--leader-election'/);
        assert.match(err.message, /--leader-elect/);
        return true;
      },
    );
  });
});
