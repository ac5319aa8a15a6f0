"""Drives the brainnet-ts kernel through jupyter_client and prints one JSON object of observations.

Used by test/kernel/kernel.test.ts (which installs the kernel spec with --prefix and sets JUPYTER_PATH).
Usage: JUPYTER_PATH=<prefix>/share/jupyter /usr/bin/python3 test/kernel/driver.py <kernel cwd>
"""
import json
import os
import sys
import tempfile
import time

from jupyter_helpers import TIMEOUT, collect, shell_reply, start_kernel  # noqa: F401


def wait_for(kc, msg_id, msg_type, timeout=TIMEOUT):
    """Waits for an iopub message of one request (e.g. its execute_input: the kernel has started the cell)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except Exception:
            continue
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == msg_type:
            return msg
    raise TimeoutError(f"no {msg_type} for {msg_id} within {timeout} s")


T0 = time.time()


def step(name):
    """Notes on stderr how far the driver got, so a driver killed on a loaded machine says where it was."""
    print(f"[driver] {time.time() - T0:6.1f} s  {name}", file=sys.stderr, flush=True)


def execute(kc, code, **kw):
    msg_id = kc.execute(code, **kw)
    reply = shell_reply(kc, msg_id)
    return {"code": code, "reply": reply["content"], "iopub": collect(kc, msg_id)}


def run_nbclient(cwd):
    """Executes a two-cell notebook with nbclient and returns the executed cells' outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "brainnet-ts", "display_name": "TypeScript (brainnet)", "language": "typescript"}
    nb.cells = [
        nbformat.v4.new_code_cell("import { shapeSize } from 'brainnet/io';\nconst n = shapeSize([3, 4]);\nconsole.log('n is', n);"),
        nbformat.v4.new_code_cell("n * 2"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="brainnet-ts", resources={"metadata": {"path": cwd}}).execute()
    return [{"execution_count": c.execution_count, "outputs": c.outputs} for c in nb.cells]


def main():
    if sys.argv[1] == "nbclient":
        print(json.dumps(run_nbclient(sys.argv[2])))
        return
    cwd = sys.argv[1]
    result = {}
    t0 = time.time()
    step("starting the kernel")
    km, kc = start_kernel(cwd)
    result["startup_s"] = time.time() - t0
    step("kernel ready")
    try:
        msg_id = kc.kernel_info()
        result["kernel_info"] = shell_reply(kc, msg_id)["content"]
        cells = {
            "hello": 'console.log("hello"); 6 * 7',
            "silent": "1 + 1",
            "error": 'const a = 1;\nthrow new RangeError("out of range");',
            "display": "__brainnetKernel.display({ data: { 'text/html': '<b>v1</b>' }, transient: { display_id: 'd1' } });\n"
            "__brainnetKernel.display({ data: { 'text/html': '<b>v2</b>' }, transient: { display_id: 'd1' } }, true);",
            "brainnet": "import { io } from 'brainnet';\nio.shapeSize([2, 3, 4])",
            "brainnet_later": "io.shapeSize([5, 5])",
            "await": "const v = await new Promise<number>((r) => setTimeout(() => r(5), 50));\nv * 2",
            "const1": "const k = 1; k",
            "const2": "const k = 2; k",
            "esm_vl": "import * as vl from 'vega-lite';\ntypeof vl.compile",
            "esm_h5": "import h5wasm from 'h5wasm';\ntypeof h5wasm.File",
            "syntax": "const ok = 1;\nconst x = 1 +* 2;",
            "async_out": "setTimeout(() => console.log('later'), 20);\nawait new Promise((r) => setTimeout(r, 200));",
            "func_error": "function boom(n: number) {\n  if (n > 1) throw new TypeError(`n=${n}`);\n}\nboom(1);",
            "func_error_call": "boom(3)",
            "tslab": "import * as tslab from 'tslab';\ntslab.display.html('<i>tslab</i>');",
            "bundle": "({ _repr_mimebundle_: () => ({ 'text/markdown': '**md**' }) })",
            "exec_count": "__brainnetKernel.executionCount",
        }
        for name, code in cells.items():
            step(f"cell {name}")
            kw = {"silent": True} if name == "silent" else {}
            result[name] = execute(kc, code, **kw)

        # completion and inspection
        step("completion and inspection")
        msg_id = kc.complete("io.shapeSi")
        result["complete_brainnet"] = shell_reply(kc, msg_id)["content"]
        msg_id = kc.complete("const s = 'x';\ns.toUpp", len("const s = 'x';\ns.toUpp"))
        result["complete_member"] = shell_reply(kc, msg_id)["content"]
        msg_id = kc.inspect("io.shapeSize", 12)
        result["inspect"] = shell_reply(kc, msg_id)["content"]
        msg_id = kc.is_complete("function f() {")
        result["is_complete"] = shell_reply(kc, msg_id)["content"]

        # interrupt a runaway synchronous cell, then a pending await: once the kernel has started the cell (its
        # execute_input is out), however long that took; the kernel re-sends its SIGINT until the cell stops
        for name, code in (("interrupt_sync", "while (true) {}"), ("interrupt_await", "await new Promise(() => {})")):
            step(name)
            msg_id = kc.execute(code)
            wait_for(kc, msg_id, "execute_input")
            km.interrupt_kernel()
            result[name] = {"reply": shell_reply(kc, msg_id)["content"], "iopub": collect(kc, msg_id)}
            result[name + "_after"] = execute(kc, "40 + 2")

        msg_id = kc.history(hist_access_type="tail", n=3, output=False, raw=True)
        result["history"] = shell_reply(kc, msg_id)["content"]

        # "Run all" after a failing cell: requests already queued are aborted, a later one runs.
        # The failing cell waits for a flag file that appears only once the next two requests are sent.
        step("run all after a failing cell")
        flag = os.path.join(tempfile.gettempdir(), f"bn-abort-flag-{os.getpid()}")
        failing = (
            "import { existsSync } from 'node:fs';\n"
            "await new Promise<void>((r) => { const t = setInterval(() => { if (existsSync(%s)) { clearInterval(t); r(); } }, 10); });\n"
            'throw new Error("stop")' % json.dumps(flag)
        )
        ids = [kc.execute(c) for c in (failing, "1", "2")]
        open(flag, "w").close()
        try:
            result["abort"] = [shell_reply(kc, i)["content"] for i in ids]
        finally:
            os.remove(flag)
        for i in ids:
            collect(kc, i, timeout=5)
        result["abort_after"] = execute(kc, "3")
    finally:
        step("shutdown")
        t = time.time()
        kc.stop_channels()
        # The Popen object itself: jupyter_client forgets it once the process is reaped.
        popen = km.provisioner.process
        # jupyter_client waits 5 s by default before it kills a kernel that has not exited; on a loaded machine the
        # kernel's own clean exit can take longer, and the check below is about how it exits, not how fast
        km.shutdown_wait_time = 30
        km.shutdown_kernel(now=False)
        result["shutdown_s"] = time.time() - t
        result["alive_after_shutdown"] = km.is_alive()
        # 0: it exited by itself on shutdown_request; negative: jupyter_client had to signal it.
        result["exit_code"] = popen.wait()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
