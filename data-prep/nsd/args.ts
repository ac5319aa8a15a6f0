/** Shared argument parsing for the NSD data-prep tools: `--key value`, `--key=value`, `--flag`, `--help`. */
export function parseArgs(tool: string, usage: string, argv: string[], flags: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') { console.log(usage); process.exit(0); }
    if (!a.startsWith('--')) fail(tool, `unexpected argument '${a}'`, usage);
    if (a.includes('=')) { const [k, v] = a.slice(2).split(/=(.*)/s, 2); out[k!] = v!; continue; }
    const k = a.slice(2);
    if (flags.includes(k)) { out[k] = 'true'; continue; }
    const v = argv[++i];
    if (v === undefined) fail(tool, `--${k} needs a value`, usage);
    out[k] = v!;
  }
  return out;
}

/** Prints an error with the usage and exits 2. */
export function fail(tool: string, msg: string, usage: string): never {
  console.error(`${tool}: ${msg}\n\n${usage}`);
  process.exit(2);
}

/** Runs `main`, printing any error's message (no stack for expected errors) and exiting 1. */
export function runMain(tool: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    const err = e as Error;
    const plain = err?.name === 'FileFormatError' || err?.name === 'FolderLockedError' || err instanceof RangeError;
    console.error(`${tool}: ${plain ? err.message : err?.stack ?? String(e)}`);
    process.exit(1);
  });
}
