/**
 * Protocol conformance of the brainnet-ts kernel, after the public suite runtimed/kernel-testbed: its published
 * list of 26 tests in four tiers (src/tests.rs) and its pass rules (src/harness.rs: requests and replies read in
 * order on one socket; iopub collected up to the request's idle status; input requests answered on a stdin socket
 * that shares the shell socket's identity). The tests are written here in this repository's own words and with its
 * own snippets; every message the kernel sends in the run is parsed strictly (protocol-schema.ts), as the suite's
 * typed client does, which refuses e.g. `codemirror_mode: { name, typescript: true }`.
 *
 * Results per test: 'pass', 'partial' (the suite's PartialPass), 'unsupported' or 'fail'; every test must pass.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { liveKernels } from 'brainnet/runner';
import { installTempKernel, REPO } from './helpers.js';
import { StrictClient, type Message } from './strict-client.js';

type Result = { result: 'pass' | 'partial' | 'unsupported' | 'fail'; note?: string };
type Tier = 'basic' | 'interactive' | 'rich output' | 'advanced';
interface ConformanceCase {
  name: string;
  tier: Tier;
  what: string;
  run(k: StrictClient): Promise<Result>;
}

const pass = (): Result => ({ result: 'pass' });
const failed = (note: string): Result => ({ result: 'fail', note });
const types = (ms: Message[]) => ms.map((m) => m.header.msg_type);

// This repository's snippets for the suite's roles (print_hello, complete_code, syntax_error, ...).
const SNIPPET = {
  hello: "console.log('hello from brainnet')",
  stderr: "console.error('an error line')",
  complete: 'const conformanceValue = 1',
  incomplete: 'const open = {',
  syntaxError: 'function function',
  value: '20 + 22',
  completionSetup: 'const brainnetCompletionProbe = 42',
  completionPrefix: 'brainnetCompletionPr',
  display: "__brainnetKernel.display({ data: { 'text/html': '<b>shown</b>' } })",
  updateDisplay:
    "__brainnetKernel.display({ data: { 'text/html': '<b>first</b>' }, transient: { display_id: 'conformance-update' } });\n" +
    "__brainnetKernel.display({ data: { 'text/html': '<b>second</b>' }, transient: { display_id: 'conformance-update' } }, true)",
  rich: "({ _repr_mimebundle_: () => ({ 'text/html': '<table><tr><td>A</td><td>0.08</td></tr></table>' }) })",
  input: "prompt('Enter a word: ')",
};

/** Runs code and gives the suite's view: the reply (the next shell message) and the request's iopub messages. */
async function run(k: StrictClient, code: string): Promise<{ reply: Message; iopub: Message[] }> {
  return k.execute(code);
}

const CASES: ConformanceCase[] = [
  // Tier 1: basic protocol
  { name: 'heartbeat_responds', tier: 'basic', what: 'heartbeat echoes within the timeout', run: async (k) => ((await k.heartbeat()) ? pass() : failed('no echo')) },
  {
    name: 'kernel_info_reply_valid', tier: 'basic', what: 'kernel_info_reply with status ok',
    run: async (k) => {
      const { reply } = await k.request('kernel_info_request', {});
      return reply.header.msg_type === 'kernel_info_reply' && reply.content.status === 'ok' ? pass() : failed(`got ${reply.header.msg_type} status ${reply.content.status}`);
    },
  },
  {
    name: 'kernel_info_has_language_info', tier: 'basic', what: 'non-empty language_info.name',
    run: async (k) => ((await k.request('kernel_info_request', {})).reply.content.language_info?.name ? pass() : failed('empty language_info.name')),
  },
  {
    name: 'kernel_info_has_protocol_version', tier: 'basic', what: 'non-empty protocol_version',
    run: async (k) => ((await k.request('kernel_info_request', {})).reply.content.protocol_version ? pass() : failed('empty protocol_version')),
  },
  {
    name: 'execute_stdout', tier: 'basic', what: 'printing gives a stdout stream',
    run: async (k) => ((await run(k, SNIPPET.hello)).iopub.some((m) => m.header.msg_type === 'stream' && m.content.name === 'stdout' && /hello/.test(m.content.text)) ? pass() : failed('no stdout stream with the text')),
  },
  {
    name: 'execute_stderr', tier: 'basic', what: 'printing to stderr gives a stderr stream',
    run: async (k) => ((await run(k, SNIPPET.stderr)).iopub.some((m) => m.header.msg_type === 'stream' && m.content.name === 'stderr' && /error/.test(m.content.text)) ? pass() : failed('no stderr stream with the text')),
  },
  {
    name: 'execute_reply_ok', tier: 'basic', what: 'valid code gets execute_reply status ok',
    run: async (k) => {
      const { reply } = await run(k, SNIPPET.complete);
      return reply.header.msg_type !== 'execute_reply' ? failed(`expected execute_reply, got ${reply.header.msg_type}`) : reply.content.status === 'ok' ? pass() : failed(`status ${reply.content.status}`);
    },
  },
  {
    name: 'status_busy_idle_lifecycle', tier: 'basic', what: 'busy, then idle, on iopub',
    run: async (k) => {
      const states = (await run(k, SNIPPET.complete)).iopub.filter((m) => m.header.msg_type === 'status').map((m) => m.content.execution_state);
      const b = states.indexOf('busy');
      const i = states.indexOf('idle');
      return b >= 0 && i > b ? pass() : failed(`statuses ${states.join(', ')}`);
    },
  },
  {
    name: 'execute_input_broadcast', tier: 'basic', what: 'execute_input on iopub',
    run: async (k) => ((await run(k, SNIPPET.complete)).iopub.some((m) => m.header.msg_type === 'execute_input') ? pass() : failed('no execute_input')),
  },
  // Tier 2: interactive features
  {
    name: 'complete_request', tier: 'interactive', what: 'complete_reply status ok (and the name defined before)',
    run: async (k) => {
      await run(k, SNIPPET.completionSetup);
      const { reply } = await k.request('complete_request', { code: SNIPPET.completionPrefix, cursor_pos: SNIPPET.completionPrefix.length });
      if (reply.header.msg_type !== 'complete_reply') return failed(`got ${reply.header.msg_type}`);
      if (reply.content.status !== 'ok') return failed(`status ${reply.content.status}`);
      return reply.content.matches.includes('brainnetCompletionProbe') ? pass() : { result: 'partial', note: `matches ${reply.content.matches.slice(0, 5)}` };
    },
  },
  {
    name: 'inspect_request', tier: 'interactive', what: 'inspect_reply status ok',
    run: async (k) => {
      const code = 'brainnetCompletionProbe';
      const { reply } = await k.request('inspect_request', { code, cursor_pos: code.length, detail_level: 0 });
      return reply.header.msg_type === 'inspect_reply' && reply.content.status === 'ok' ? pass() : failed(`got ${reply.header.msg_type} status ${reply.content.status}`);
    },
  },
  {
    name: 'is_complete_complete', tier: 'interactive', what: "complete code is 'complete'",
    run: async (k) => {
      const s = (await k.request('is_complete_request', { code: SNIPPET.complete })).reply.content.status;
      return s === 'complete' ? pass() : { result: 'partial', note: `got ${s}` };
    },
  },
  {
    name: 'is_complete_incomplete', tier: 'interactive', what: "unfinished code is 'incomplete'",
    run: async (k) => {
      const s = (await k.request('is_complete_request', { code: SNIPPET.incomplete })).reply.content.status;
      return s === 'incomplete' ? pass() : { result: 'partial', note: `got ${s}` };
    },
  },
  {
    name: 'history_request', tier: 'interactive', what: 'history_reply status ok',
    run: async (k) => {
      await run(k, SNIPPET.complete);
      const { reply } = await k.request('history_request', { hist_access_type: 'tail', n: 10, output: false, raw: true });
      return reply.header.msg_type === 'history_reply' && reply.content.status === 'ok' && reply.content.history.length > 0 ? pass() : failed(JSON.stringify(reply.content).slice(0, 200));
    },
  },
  {
    name: 'comm_info_request', tier: 'interactive', what: 'comm_info_reply status ok',
    run: async (k) => ((await k.request('comm_info_request', {})).reply.content.status === 'ok' ? pass() : failed('status not ok')),
  },
  {
    name: 'error_handling', tier: 'interactive', what: 'a syntax error gives an error reply or an error on iopub',
    run: async (k) => {
      const { reply, iopub } = await run(k, SNIPPET.syntaxError);
      return reply.content.status === 'error' || iopub.some((m) => m.header.msg_type === 'error') ? pass() : failed('no error');
    },
  },
  // Tier 3: rich output
  {
    name: 'display_data', tier: 'rich output', what: 'display_data on iopub',
    run: async (k) => ((await run(k, SNIPPET.display)).iopub.some((m) => m.header.msg_type === 'display_data') ? pass() : { result: 'unsupported' }),
  },
  {
    name: 'update_display_data', tier: 'rich output', what: 'display_data, then update_display_data of the same id',
    run: async (k) => {
      const io = (await run(k, SNIPPET.updateDisplay)).iopub;
      const shown = io.find((m) => m.header.msg_type === 'display_data');
      const updated = io.find((m) => m.header.msg_type === 'update_display_data');
      if (!shown) return { result: 'unsupported' };
      if (!updated) return { result: 'partial', note: 'display_data without update_display_data' };
      return updated.content.transient.display_id === shown.content.transient?.display_id ? pass() : failed('update names another display id');
    },
  },
  {
    name: 'execute_result', tier: 'rich output', what: 'an expression gives execute_result',
    run: async (k) => {
      const r = (await run(k, SNIPPET.value)).iopub.find((m) => m.header.msg_type === 'execute_result');
      return r?.content.data['text/plain'] === '42' ? pass() : failed(r ? `text/plain ${r.content.data['text/plain']}` : 'no execute_result');
    },
  },
  {
    name: 'rich_execute_result', tier: 'rich output', what: 'execute_result with a rich MIME type',
    run: async (k) => {
      const r = (await run(k, SNIPPET.rich)).iopub.find((m) => m.header.msg_type === 'execute_result');
      return r && 'text/html' in r.content.data ? pass() : r ? { result: 'partial', note: 'text/plain only' } : { result: 'unsupported' };
    },
  },
  // Tier 4: advanced features
  {
    name: 'stdin_input_request', tier: 'advanced', what: 'input_request on stdin, answered; the cell completes with the answer',
    run: async (k) => {
      const r = await k.execute(SNIPPET.input, { allowStdin: true, onInput: () => 'answer_42' });
      if (!r.inputRequests.length) return failed('no input_request on stdin');
      if (r.inputRequests[0].parent_header.msg_id !== r.id) return failed('input_request does not name the execute_request as its parent');
      const value = r.iopub.find((m) => m.header.msg_type === 'execute_result')?.content.data['text/plain'];
      return r.reply.content.status === 'ok' && value === "'answer_42'" ? pass() : failed(`status ${r.reply.content.status}, value ${value}`);
    },
  },
  {
    name: 'comms_lifecycle', tier: 'advanced', what: 'comm_open of an unknown target is closed (or ignored) and the kernel goes on',
    run: async (k) => {
      const commId = `conformance-${Date.now()}`;
      await k.send(k.shell, 'comm_open', { comm_id: commId, target_name: 'brainnet.conformance.unknown', data: {} });
      const closed = await k.waitFor(k.iopub, (m) => m.header.msg_type === 'comm_close' && m.content.comm_id === commId, 2000).catch(() => null);
      if (closed) return pass();
      await k.send(k.shell, 'comm_close', { comm_id: commId, data: {} });
      return (await run(k, SNIPPET.complete)).reply.content.status === 'ok' ? pass() : failed('unresponsive after the comm');
    },
  },
  {
    name: 'interrupt_request', tier: 'advanced', what: 'interrupt_reply status ok on control',
    run: async (k) => {
      const { reply } = await k.request('interrupt_request', {}, k.control);
      return reply.header.msg_type === 'interrupt_reply' && reply.content.status === 'ok' ? pass() : failed(`got ${reply.header.msg_type}`);
    },
  },
  {
    name: 'execution_count_increments', tier: 'advanced', what: 'execution_count grows by execute',
    run: async (k) => {
      const a = (await run(k, SNIPPET.complete)).reply.content.execution_count;
      const b = (await run(k, SNIPPET.complete)).reply.content.execution_count;
      return b > a ? pass() : failed(`${a} -> ${b}`);
    },
  },
  {
    name: 'parent_header_correlation', tier: 'advanced', what: 'every message of a request carries it as parent',
    run: async (k) => {
      const r = await k.execute(SNIPPET.hello);
      const bad = [...r.iopub, r.reply].filter((m) => m.parent_header.msg_id !== r.id);
      return bad.length ? failed(`${types(bad).join(', ')} without the request as parent`) : pass();
    },
  },
  // Last: shutdown.
  {
    name: 'shutdown_reply', tier: 'basic', what: 'shutdown_reply status ok on control, then the kernel exits',
    run: async (k) => {
      const { reply } = await k.request('shutdown_request', { restart: false }, k.control);
      if (reply.header.msg_type !== 'shutdown_reply' || reply.content.status !== 'ok') return failed(`got ${reply.header.msg_type} status ${reply.content.status}`);
      return (await k.exited(10_000)) ? pass() : failed('the kernel did not exit within 10 s');
    },
  },
];

describe('kernel: protocol conformance (the kernel-testbed test list, strict parsing)', function () {
  this.timeout(120_000);
  let install: ReturnType<typeof installTempKernel>;
  let k: StrictClient;
  const results: Array<{ name: string; tier: Tier } & Result> = [];

  before(async () => {
    install = installTempKernel();
    k = await StrictClient.start(path.join(install.jupyterPath, 'kernels', 'brainnet-ts', 'kernel.json'), REPO);
  });
  after(async () => {
    await k?.close();
    install?.cleanup();
    if (results.length) {
      const passed = results.filter((r) => r.result === 'pass').length;
      console.log(`      kernel-testbed list: ${passed} of ${CASES.length} passed (${results.map((r) => (r.result === 'pass' ? '' : `${r.name}: ${r.result}`)).filter(Boolean).join('; ') || 'none other'})`);
    }
  });

  for (const c of CASES) {
    it(`${c.tier}: ${c.name} (${c.what})`, async () => {
      const r = await c.run(k);
      results.push({ name: c.name, tier: c.tier, ...r });
      assert.equal(r.result, 'pass', `${c.name}: ${r.result}${r.note ? ` (${r.note})` : ''}`);
    });
  }

  it('sent only messages that parse strictly (every required field, with its type)', () => {
    assert.ok(k.received.iopub.length > 50 && k.received.shell.length > 20, 'the run saw the messages');
    assert.deepEqual(k.violations, []);
  });

  it('its kernel is on the runner\'s record of live kernels until closed (so the root hooks stop it after a timeout)', async () => {
    assert.ok((liveKernels() as unknown[]).includes(k));
    await k.close();
    assert.ok(!(liveKernels() as unknown[]).includes(k));
    assert.equal(k.alive, false);
  });
});

describe('kernel: strict parsing (protocol-schema.ts) refuses what typed clients refuse', () => {
  it('refuses codemirror_mode { name, typescript: true } and takes a string or { name, version }', async () => {
    const { CONTENT } = await import('./protocol-schema.js');
    const info = (mode: unknown) => ({
      status: 'ok', protocol_version: '5.3', implementation: 'x', implementation_version: '1', banner: '', help_links: [],
      language_info: { name: 'typescript', version: '5', mimetype: 'text/typescript', file_extension: '.ts', pygments_lexer: 'typescript', nbconvert_exporter: 'script', codemirror_mode: mode },
    });
    assert.match(CONTENT.kernel_info_reply(info({ name: 'javascript', typescript: true }), 'k').join('\n'), /codemirror_mode: expected a string or \{ name: string, version: integer \}/);
    assert.deepEqual(CONTENT.kernel_info_reply(info('typescript'), 'k'), []);
    assert.deepEqual(CONTENT.kernel_info_reply(info({ name: 'ipython', version: 3 }), 'k'), []);
    assert.match(CONTENT.kernel_info_reply(info({ name: 'ipython', version: 3.5 }), 'k').join('\n'), /codemirror_mode/);
    assert.match(CONTENT.is_complete_reply({ status: 'complete' }, 'r').join('\n'), /indent: required, missing/);
    assert.match(CONTENT.execute_reply({ status: 'aborted', execution_count: null }, 'r').join('\n'), /execution_count: expected a non-negative integer, found null/);
  });
});
