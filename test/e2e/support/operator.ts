// Runs the operator as a separate process — the compiled dist/main.js, as the container
// does — with the ServiceAccount's kubeconfig, and reads its JSON logs and /metrics.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../../support/fixtures.ts';
import { waitFor } from '../../support/manual-clock.ts';
import { freePort } from '../../support/registry-server.ts';
import { OPERATOR_NAMESPACE, env } from './env.ts';

export type LogLine = Record<string, unknown> & { message: string; level: string; timestamp: string };

export interface OperatorOptions {
  identity: string;
  leaseName?: string;
  args?: string[];
  env?: Record<string, string>;
  /**
   * How to start it other than `node dist/main.js` from the repository: a command to run node
   * under (such as setpriv, to change user), the main module, the working directory.
   */
  launch?: { prefix: string[]; main: string; cwd: string };
}

export class Operator {
  readonly identity: string;
  readonly port: number;
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  /** Everything it wrote, kept in the run's work directory: a failure names it. */
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;

  private constructor(identity: string, port: number, child: ChildProcess) {
    this.identity = identity;
    this.port = port;
    this.child = child;
    this.logFile = join(env().workDir, `operator-${identity}-${child.pid ?? 'unstarted'}.log`);
    const file = createWriteStream(this.logFile);
    child.once('close', () => file.end());
    child.stderr!.on('data', (chunk: Buffer) => file.write(chunk));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      file.write(`${line}\n`);
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.stderr.push(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(options: OperatorOptions): Promise<Operator> {
    const port = await freePort();
    const launch = options.launch ?? { prefix: [], main: join(ROOT, 'dist', 'main.js'), cwd: ROOT };
    const [command, ...prefixArgs] = [...launch.prefix, process.execPath];
    const child = spawn(
      command,
      [
        ...prefixArgs,
        launch.main,
        '--leader-election-id',
        options.leaseName ?? 'patchline-leader',
        ...(options.args ?? []),
      ],
      {
        cwd: launch.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          KUBECONFIG: env().operatorKubeconfig,
          POD_NAME: options.identity,
          POD_NAMESPACE: OPERATOR_NAMESPACE,
          PATCHLINE_PROBE_ADDRESS: `127.0.0.1:${port}`,
          PATCHLINE_LOG_FORMAT: 'json',
          PATCHLINE_LOG_LEVEL: 'debug',
          ...options.env,
        },
      },
    );
    const op = new Operator(options.identity, port, child);
    await op.waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`operator exited ${child.exitCode}: ${op.stderr.join('')}`);
        return (await op.get('/readyz')).status === 200;
      },
      'operator ready',
      30_000,
    );
    return op;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async get(path: string): Promise<{ status: number; body: string }> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}${path}`, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, body: await res.text() };
    } catch {
      return { status: 0, body: '' };
    }
  }

  /** A metric's value (the sum over series matching every given label). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const { body } = await this.get('/metrics');
    let sum = 0;
    for (const line of body.split('\n')) {
      const m = /^(\w+)(\{[^}]*\})? ([-\d.e+]+|NaN)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const l = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  findLog(predicate: (l: LogLine) => boolean): LogLine | undefined {
    return this.logs.find(predicate);
  }

  async waitForLog(predicate: (l: LogLine) => boolean, what: string, timeoutMs = 30_000): Promise<LogLine> {
    await this.waitUntil(() => this.logs.some(predicate), what, timeoutMs);
    return this.logs.find(predicate)!;
  }

  async waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(condition, `${this.identity}: ${what}`, timeoutMs, 50);
    } catch (err) {
      const tail = this.logs
        .slice(-15)
        .map((l) => JSON.stringify(l))
        .join('\n');
      throw new Error(
        `${(err as Error).message}\nlast log lines (all of them: ${this.logFile}):\n${tail}\n${this.stderr.join('').slice(-2000)}`,
        { cause: err },
      );
    }
  }

  /** SIGTERM, then wait for a clean exit. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  /** The last lines it logged (debug aside), indented for a failed test's output. */
  recentLogs(lines = 25): string {
    return this.logs
      .filter((l) => l.level !== 'debug')
      .slice(-lines)
      .map((l) => `      | ${JSON.stringify(l)}`)
      .join('\n');
  }

  /** SIGSTOP: the process is frozen (timers, sockets and all) until resume(). */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Resolves with the exit code once the process has exited on its own. */
  exit(): Promise<number | null> {
    return this.exited;
  }

  /** kill -9: no cleanup, no lease release. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
