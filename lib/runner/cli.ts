#!/usr/bin/env node
/**
 * Command line for the headless runner:
 *   node dist/lib/runner/cli.js <in.ipynb> --out <dir> [--param name=value ...] [--kernel name] [--timeout s]
 *                                 [--input name=value ...] [--rerun-from <tag|cell id|number>] [--watch]
 * Prints each cell's time and the output paths, and while a cell runs, its progress bars (one redrawn line in a
 * terminal, a line every 10 s in a log); exits 1 with the failing cell, line and message.
 * --input answers the cells' input()/prompt() requests by prompt name ('Subject: ' is answered by --input Subject=01).
 * --rerun-from runs the notebook, then injects the parameters and re-runs only the cells downstream of the named
 * cell in the same kernel; --watch keeps the kernel and re-runs changed cells and their dependents on each save (Ctrl-C ends it).
 * On SIGINT, SIGTERM or SIGHUP the kernel is stopped and its connection file removed before the runner exits.
 */
import { parseArgs } from 'node:util';
import { LiveProgress } from './live-progress.js';
import { runNotebook, NotebookCellError } from './runner.js';

const USAGE =
  'usage: node dist/lib/runner/cli.js <in.ipynb> --out <dir> [--param name=value ...] [--input name=value ...] [--kernel name] [--timeout seconds] [--rerun-from <tag|cell id|number>] [--watch]';

/** Parsed command line of the runner. */
export interface CliArgs {
  input: string;
  outDir: string;
  params: Record<string, string>;
  /** Answers to input requests, by prompt name. */
  inputs: Record<string, string>;
  kernelName?: string;
  cellTimeoutMs?: number;
  rerunFrom?: string;
  watch: boolean;
}

/** Parses the runner's arguments; throws a message with the usage line on bad input. */
export function parseCliArgs(argv: string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      param: { type: 'string', short: 'p', multiple: true },
      input: { type: 'string', multiple: true },
      kernel: { type: 'string', short: 'k' },
      timeout: { type: 'string', short: 't' },
      help: { type: 'boolean', short: 'h' },
      'rerun-from': { type: 'string' },
      watch: { type: 'boolean', short: 'w' },
    },
  });
  if (values.help) throw new Error(USAGE);
  if (positionals.length !== 1) throw new Error(`expected one input notebook, found ${positionals.length ? positionals.join(' ') : 'none'}\n${USAGE}`);
  if (!values.out) throw new Error(`expected --out <dir>\n${USAGE}`);
  const pairs = (flag: string, list: string[] | undefined) => {
    const out: Record<string, string> = {};
    for (const p of list ?? []) {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new Error(`--${flag}: expected name=value, found "${p}"\n${USAGE}`);
      out[p.slice(0, eq)] = p.slice(eq + 1);
    }
    return out;
  };
  const params = pairs('param', values.param);
  const inputs = pairs('input', values.input);
  let cellTimeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const s = Number(values.timeout);
    if (!Number.isFinite(s) || s <= 0) throw new Error(`--timeout: expected a positive number of seconds, found "${values.timeout}"\n${USAGE}`);
    cellTimeoutMs = s * 1000;
  }
  return { input: positionals[0], outDir: values.out, params, inputs, kernelName: values.kernel, cellTimeoutMs, rerunFrom: values['rerun-from'], watch: !!values.watch };
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const live = new LiveProgress({ indent: '' });
  const log = (s: string) => {
    live.clear();
    process.stdout.write(s + '\n');
  };
  const stop = new AbortController();
  // Ctrl-C in watch mode ends it cleanly; otherwise (or a second time) the runner stops its kernel and exits now.
  // process.exit runs the runner's exit hook, which kills the kernel and removes its connection file.
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGINT' && args.watch && !stop.signal.aborted) return stop.abort();
    live.stop();
    console.error(`\n${signal}: stopping the kernel and exiting`);
    process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 129);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  if (args.watch) log(`watch mode: after the first run, each save of ${args.input} re-runs the changed cells and their dependents (Ctrl-C ends it)`);
  try {
    const r = await runNotebook(args.input, {
      outDir: args.outDir,
      params: args.params,
      inputs: args.inputs,
      kernelName: args.kernelName,
      cellTimeoutMs: args.cellTimeoutMs,
      rerunFrom: args.rerunFrom,
      watch: args.watch,
      signal: stop.signal,
      onRerun: (ev) => log(`rerun: ${ev.message}`),
      onWarning: (w) => {
        live.clear();
        console.error(`warning: ${w}`);
      },
      onProgress: (ev) => live.onProgress(ev),
      onCell: (ev) => {
        live.onCell(ev);
        if (ev.phase === 'end') log(`cell ${ev.number}/${ev.total} ${ev.status === 'ok' ? 'ok' : 'FAILED'} in ${ev.seconds!.toFixed(1)} s`);
      },
    });
    log(`ran ${args.input} with kernel ${r.kernelName} in ${r.seconds.toFixed(1)} s`);
    log(`wrote ${r.ipynbPath}`);
    log(`wrote ${r.htmlPath}`);
    return 0;
  } catch (e) {
    live.stop();
    if (e instanceof NotebookCellError) {
      console.error(`error: ${e.message}`);
      console.error(`wrote (up to the failure) ${e.ipynbPath}`);
      console.error(`wrote (up to the failure) ${e.htmlPath}`);
    } else {
      console.error(`error: ${(e as Error).message}`);
    }
    return 1;
  } finally {
    live.stop();
    for (const s of signals) process.off(s, onSignal);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
