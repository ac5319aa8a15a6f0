/**
 * The contents of the kernel's simple replies, shaped as strict clients parse them (every field the protocol
 * requires, with its type): kernel_info_reply, history_reply, connect_reply, and the cursor conversions of
 * complete and inspect.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { PROTOCOL_VERSION, type ConnectionInfo } from './wire.js';

export const SESSION_NUMBER = 1;

/** One executed input, for history_request. */
export type HistoryEntry = { line: number; input: string; output: string | null };

/** kernel_info_reply content. `codemirror_mode` is a plain string: strict clients take a string or `{ name, version: integer }`. */
export function kernelInfo(): Record<string, unknown> {
  let version = '0.0.0';
  try {
    version = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
  } catch {
    /* keep default */
  }
  return {
    status: 'ok',
    protocol_version: PROTOCOL_VERSION,
    implementation: 'brainnet-ts',
    implementation_version: version,
    language_info: {
      name: 'typescript',
      version: ts.version,
      mimetype: 'text/typescript',
      file_extension: '.ts',
      codemirror_mode: 'typescript',
      pygments_lexer: 'typescript',
      nbconvert_exporter: 'script',
    },
    banner: `brainnet-ts: TypeScript ${ts.version} on Node.js ${process.version}`,
    debugger: false,
    help_links: [{ text: 'brainnet-ts kernel', url: 'https://www.typescriptlang.org/docs/' }],
  };
}

/** history_request: tail, range and search (glob pattern, as IPython) over this session's inputs. */
export function historyReply(history: HistoryEntry[], req: Record<string, unknown>): unknown[] {
  // With output, an entry is (session, line, [input, output]); an input without a value has output ''.
  const fmt = (h: HistoryEntry) => [SESSION_NUMBER, h.line, req.output ? [h.input, h.output ?? ''] : h.input];
  let entries = history;
  if (req.hist_access_type === 'tail') {
    entries = entries.slice(-Math.max(0, Number(req.n ?? 10)));
  } else if (req.hist_access_type === 'range') {
    const session = Number(req.session ?? 0);
    if (session !== 0 && session !== SESSION_NUMBER) return [];
    const start = Number(req.start ?? 0);
    const stop = req.stop === undefined || req.stop === null ? Infinity : Number(req.stop);
    entries = entries.filter((h) => h.line >= start && h.line < stop);
  } else if (req.hist_access_type === 'search') {
    const re = new RegExp(`^${String(req.pattern ?? '*').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '.')}$`);
    entries = entries.filter((h) => re.test(h.input));
    if (req.unique) {
      const seen = new Set<string>();
      entries = entries.slice().reverse().filter((h) => !seen.has(h.input) && seen.add(h.input)).reverse();
    }
    if (req.n) entries = entries.slice(-Number(req.n));
  } else {
    return [];
  }
  return entries.map(fmt);
}

/** connect_reply content: the ports of the connection file. */
export function connectReply(c: ConnectionInfo): Record<string, unknown> {
  return { status: 'ok', shell_port: c.shell_port, iopub_port: c.iopub_port, stdin_port: c.stdin_port, hb_port: c.hb_port, control_port: c.control_port };
}

/** Jupyter cursor positions count Unicode code points; JavaScript strings count UTF-16 units. */
export function toJsOffset(code: string, codePoints: number): number {
  let units = 0;
  let n = 0;
  for (const ch of code) {
    if (n >= codePoints) break;
    units += ch.length;
    n++;
  }
  return units;
}

/** The inverse of {@link toJsOffset}. */
export function toCodePointOffset(code: string, units: number): number {
  return [...code.slice(0, units)].length;
}
