/**
 * Strict shapes of the Jupyter messages a kernel sends (messaging protocol 5.3), written for this repository's
 * conformance test. Like a typed client (e.g. the Rust types of runtimed's jupyter-protocol, which
 * runtimed/kernel-testbed parses with), a field the protocol requires must be present with its type; a message
 * type the client does not know is an error. Extra fields are allowed (clients ignore them).
 * `validateMessage(header, parent, content)` returns the list of problems ('' paths name the field).
 */

type Check = (v: unknown, at: string) => string[];

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`);
const fail = (at: string, expected: string, v: unknown) => [`${at}: expected ${expected}, found ${describe(v)}`];

const str: Check = (v, at) => (typeof v === 'string' ? [] : fail(at, 'a string', v));
const bool: Check = (v, at) => (typeof v === 'boolean' ? [] : fail(at, 'a boolean', v));
/** A non-negative integer (usize in a typed client). */
const uint: Check = (v, at) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? [] : fail(at, 'a non-negative integer', v));
const oneOf = (...values: string[]): Check => (v, at) => (typeof v === 'string' && values.includes(v) ? [] : fail(at, `one of ${values.join(' | ')}`, v));
const arrayOf = (item: Check): Check => (v, at) => (Array.isArray(v) ? v.flatMap((x, i) => item(x, `${at}[${i}]`)) : fail(at, 'an array', v));
const mapOf = (value: Check): Check => (v, at) =>
  v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(v).flatMap(([k, x]) => value(x, `${at}.${k}`)) : fail(at, 'an object', v);
const anyMap: Check = mapOf(() => []);
const anyOf = (what: string, ...checks: Check[]): Check => (v, at) => (checks.some((c) => c(v, at).length === 0) ? [] : fail(at, what, v));
/** An object with required fields (and optional ones that, when present, must have their type). */
function obj(required: Record<string, Check>, optional: Record<string, Check> = {}): Check {
  return (v, at) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return fail(at, 'an object', v);
    const o = v as Record<string, unknown>;
    const problems: string[] = [];
    for (const [k, c] of Object.entries(required)) problems.push(...(k in o ? c(o[k], `${at}.${k}`) : [`${at}.${k}: required, missing`]));
    for (const [k, c] of Object.entries(optional)) if (k in o && o[k] !== undefined) problems.push(...c(o[k], `${at}.${k}`));
    return problems;
  };
}
const tuple = (...items: Check[]): Check => (v, at) =>
  Array.isArray(v) && v.length === items.length ? items.flatMap((c, i) => c(v[i], `${at}[${i}]`)) : fail(at, `a ${items.length}-element array`, v);

/** An RFC 3339 date-time (what a typed client's DateTime parser takes). */
const dateTime: Check = (v, at) =>
  typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(v) && !Number.isNaN(Date.parse(v)) ? [] : fail(at, 'an RFC 3339 date-time', v);

/** A MIME bundle: `type/subtype` keys; text and image payloads are strings, JSON types any JSON value. */
const mimeBundle: Check = (v, at) => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return fail(at, 'a MIME bundle object', v);
  return Object.entries(v).flatMap(([mime, x]) => {
    if (!/^[a-z]+\/[\w.+-]+$/i.test(mime)) return [`${at}: expected MIME type keys, found ${JSON.stringify(mime)}`];
    if (/json$/i.test(mime)) return [];
    return str(x, `${at}["${mime}"]`);
  });
};

const status = oneOf('ok', 'error', 'aborted');
const transient = obj({}, { display_id: str });

export const HEADER = obj({ msg_id: str, username: str, session: str, date: dateTime, msg_type: str, version: str });

/** What each message a kernel may send must contain (content). */
export const CONTENT: Record<string, Check> = {
  // iopub
  status: obj({ execution_state: oneOf('busy', 'idle', 'starting') }),
  stream: obj({ name: oneOf('stdout', 'stderr'), text: str }),
  execute_input: obj({ code: str, execution_count: uint }),
  execute_result: obj({ execution_count: uint, data: mimeBundle, metadata: anyMap }, { transient }),
  display_data: obj({ data: mimeBundle, metadata: anyMap }, { transient }),
  update_display_data: obj({ data: mimeBundle, metadata: anyMap, transient: obj({ display_id: str }) }),
  error: obj({ ename: str, evalue: str, traceback: arrayOf(str) }),
  clear_output: obj({ wait: bool }),
  comm_open: obj({ comm_id: str, target_name: str, data: anyMap }),
  comm_msg: obj({ comm_id: str, data: anyMap }),
  comm_close: obj({ comm_id: str, data: anyMap }),
  // shell and control replies
  execute_reply: (v, at) => {
    const base = obj({ status, execution_count: uint }, { payload: arrayOf(obj({ source: str })), user_expressions: anyOf('an object or null', anyMap, (x) => (x === null ? [] : ['']) ) })(v, at);
    const s = (v as { status?: string })?.status;
    return s === 'error' ? [...base, ...obj({ ename: str, evalue: str, traceback: arrayOf(str) })(v, at)] : base;
  },
  kernel_info_reply: obj({
    status,
    protocol_version: str,
    implementation: str,
    implementation_version: str,
    language_info: obj({
      name: str,
      version: str,
      mimetype: str,
      file_extension: str,
      pygments_lexer: str,
      // A string, or { name, version: integer }: { name, typescript: true } is refused.
      codemirror_mode: anyOf('a string or { name: string, version: integer }', str, obj({ name: str, version: uint })),
      nbconvert_exporter: str,
    }),
    banner: str,
    help_links: arrayOf(obj({ text: str, url: str })),
  }, { debugger: bool }),
  complete_reply: obj({ status, matches: arrayOf(str), cursor_start: uint, cursor_end: uint, metadata: anyMap }),
  inspect_reply: obj({ status, found: bool, data: mimeBundle, metadata: anyMap }),
  is_complete_reply: obj({ status: oneOf('complete', 'incomplete', 'invalid', 'unknown'), indent: str }),
  history_reply: obj({ status, history: arrayOf(anyOf('(session, line, input) or (session, line, [input, output])', tuple(uint, uint, str), tuple(uint, uint, tuple(str, str)))) }),
  comm_info_reply: obj({ status, comms: mapOf(obj({ target_name: str })) }),
  interrupt_reply: obj({ status }),
  shutdown_reply: obj({ status, restart: bool }),
  connect_reply: obj({ status, shell_port: uint, iopub_port: uint, stdin_port: uint, hb_port: uint, control_port: uint }),
  // stdin
  input_request: obj({ prompt: str, password: bool }),
};

/** Every problem of one message: its header, its parent header ({} or a full header) and its content. */
export function validateMessage(header: unknown, parent: unknown, content: unknown): string[] {
  const problems = HEADER(header, 'header');
  const isEmpty = parent && typeof parent === 'object' && !Array.isArray(parent) && Object.keys(parent).length === 0;
  if (!isEmpty) problems.push(...HEADER(parent, 'parent_header'));
  const type = (header as { msg_type?: string })?.msg_type ?? '';
  const check = CONTENT[type];
  problems.push(...(check ? check(content, `${type}.content`) : [`header.msg_type: ${JSON.stringify(type)} is not a message type a kernel sends`]));
  return problems;
}
