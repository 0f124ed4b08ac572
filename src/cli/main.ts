#!/usr/bin/env node
// kubectl patchline: a kubectl plugin (kubectl-patchline on the PATH, or `npx patchline`) that
// answers the questions that cross Patchline's objects, with the user's kubeconfig and
// permissions. See docs/cli.md.
import { parseArgs } from 'node:util';
import { createKubeClient, loadKubeConfig } from '../runtime/kube-client.ts';
import {
  approve,
  CliError,
  Exit,
  get,
  history,
  inventoryCommand,
  reconcile,
  retry,
  suspend,
  tree,
  watch,
  why,
  type Context,
} from './commands.ts';
import type { OutputFormat } from './render.ts';
import { parseDuration } from '../runtime/duration.ts';

const USAGE = `kubectl patchline — Patchline's build chain, rollouts and verbs

Usage:
  kubectl patchline get policies|triggers [NAME] [-w]   the resources, with the columns that matter (-w: and their changes)
  kubectl patchline tree IMAGE|trigger/NAME|policy/NAME   the build chain: base → triggers → images → policies → containers
  kubectl patchline why KIND/NAME                   why a workload is (not) on the newest acceptable digest
  kubectl patchline history policy|trigger/NAME     builds and Events, with the time each stage took
  kubectl patchline inventory [--base IMAGE] [--cve CVE-…] [--older-than 30d]   what runs, by image and digest
  kubectl patchline reconcile policy|trigger NAME   look again now (--wait: and show the result)
  kubectl patchline suspend|resume policy|trigger NAME
  kubectl patchline approve POLICY [--digest D]     Manual mode: roll out the accepted (or given) digest
  kubectl patchline retry TRIGGER                   try a stalled build again

Flags:
  -n, --namespace NS      (default: the context's namespace, else default)
  -A, --all-namespaces
  -o, --output FORMAT     table (default), json or yaml
      --kubeconfig PATH, --context NAME
      --wait, --timeout 2m (reconcile)
      --no-color

Exit codes: 0 done, 1 failed, 2 usage, 3 not found, 4 forbidden (a permission is missing),
5 reconciled but not Ready (or not in time).
`;

interface Io {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(text: string): unknown };
}

function options(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      output: { type: 'string', short: 'o' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      wait: { type: 'boolean' },
      watch: { type: 'boolean', short: 'w' },
      timeout: { type: 'string' },
      digest: { type: 'string' },
      base: { type: 'string' },
      cve: { type: 'string' },
      'older-than': { type: 'string' },
      'no-color': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

type Values = ReturnType<typeof options>['values'];

/** "30d", "12h", "90m": days are allowed here (a Go duration has none). */
function parseAge(text: string): number {
  const days = /^(\d+)d$/.exec(text);
  if (days) return Number(days[1]) * 86_400_000;
  try {
    return parseDuration(text);
  } catch {
    throw new CliError(`--older-than must be a duration such as 30d or 12h, not "${text}"`, Exit.usage);
  }
}

/** The command's context: the user's kubeconfig (and its namespace), the output and the terminal. */
async function connect(values: Values, output: OutputFormat, io: Io): Promise<Context> {
  const connection = loadKubeConfig({
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context ? { context: values.context } : {}),
  });
  const client = await createKubeClient(connection, { userAgent: 'kubectl-patchline', requestTimeoutMs: 30_000 });
  const tty = io.stdout.isTTY === true;
  return {
    client,
    namespace: values.namespace ?? connection.namespace ?? 'default',
    allNamespaces: values['all-namespaces'] === true,
    output,
    term: {
      ...(tty ? { width: io.stdout.columns ?? 80 } : {}),
      color: tty && !values['no-color'] && io.env.NO_COLOR === undefined && io.env.TERM !== 'dumb',
    },
    write: (text) => io.stdout.write(text),
    now: () => new Date(),
  };
}

/** Runs one command; undefined when there is no such command. */
async function dispatch(command: string, args: string[], values: Values, ctx: Context): Promise<number | undefined> {
  switch (command) {
    case 'get':
      if (values.watch) {
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        process.once('SIGTERM', () => stop.abort());
        return watch(ctx, args, stop.signal);
      }
      return get(ctx, args);
    case 'why':
      return why(ctx, args);
    case 'tree':
      return tree(ctx, args);
    case 'history':
      return history(ctx, args);
    case 'inventory':
      return inventoryCommand(ctx, {
        ...(values.base ? { base: values.base } : {}),
        ...(values.cve ? { cve: values.cve } : {}),
        ...(values['older-than'] ? { olderThanMs: parseAge(values['older-than']) } : {}),
      });
    case 'reconcile':
      return reconcile(ctx, args, values.wait === true, parseDuration(values.timeout ?? '2m'));
    case 'suspend':
    case 'resume':
      return suspend(ctx, args, command === 'suspend');
    case 'approve':
      return approve(ctx, args, values.digest);
    case 'retry':
      return retry(ctx, args);
    default:
      return undefined;
  }
}

export async function run(io: Io): Promise<number> {
  let parsed: ReturnType<typeof options>;
  try {
    parsed = options(io.argv);
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return Exit.usage;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || !command) {
    (values.help ? io.stdout : io.stderr).write(USAGE);
    return values.help ? Exit.ok : Exit.usage;
  }
  const output = (values.output ?? 'table') as OutputFormat;
  if (!['table', 'json', 'yaml'].includes(output)) {
    io.stderr.write(`--output must be table, json or yaml, not "${output}"\n`);
    return Exit.usage;
  }
  let ctx: Context;
  try {
    ctx = await connect(values, output, io);
  } catch (err) {
    io.stderr.write(`error: ${(err as Error).message}\n`);
    return Exit.failed;
  }
  try {
    const code = await dispatch(command, args, values, ctx);
    if (code === undefined) io.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
    return code ?? Exit.usage;
  } catch (err) {
    io.stderr.write(`error: ${(err as Error).message}\n`);
    return err instanceof CliError ? err.exitCode : Exit.failed;
  } finally {
    await ctx.client.close();
  }
}

if (import.meta.main)
  process.exitCode = await run({
    argv: process.argv.slice(2),
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
  });
