"""1,000 runs in one process: no growth in RSS or file descriptors, and
no reference cycle that keeps a Workflow alive."""

import asyncio
import gc
import os
import weakref

import ice


@ice.register_node("t_leak_node")
async def t_leak_node(workflow, cfg, ctx):
    await asyncio.sleep(0)
    if cfg.get("fail"):
        raise RuntimeError("failing on purpose in " + workflow.name)
    return {"n": cfg.n, "seen": ctx.get("a")}


@ice.register_tool("t_leak_tool")
def t_leak_tool(x):
    return {"x": x}


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def make(i):
    return ice.Workflow([
        {"id": "a", "type": "tool", "tool_name": "t_leak_tool", "tool_args": {"x": i}},
        {"id": "b", "type": "t_leak_node", "n": i, "dependencies": ["a"]},
        {"id": "c", "type": "t_leak_node", "n": i, "fail": True,
         "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}},
        {"id": "d", "type": "t_leak_node", "n": i, "timeout_seconds": 0.001,
         "wait": "{{ a.x }}"},
        {"id": "e", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0}},
    ], name="leak%d" % i)


async def one(i):
    wf = make(i)
    r = await wf.execute(store=False, on_event=lambda ev: None)
    assert r.output["b"] == {"n": i, "seen": {"x": i}}
    assert r.nodes["c"]["error"]["kind"] == "tool_error"
    return weakref.ref(wf)


def test_a_thousand_runs_leave_nothing_behind():
    async def main():
        for i in range(200):  # warm up: caches, pools, the allocator
            await one(i)
        gc.collect()
        rss0, fds0 = rss_kb(), fd_count()
        gc.disable()  # a cycle would keep a Workflow alive from here on
        try:
            refs = [await one(i) for i in range(1000)]
            alive = sum(1 for r in refs if r() is not None)
        finally:
            gc.enable()
        gc.collect()
        return rss0, fds0, rss_kb(), fd_count(), alive

    rss0, fds0, rss1, fds1, alive = asyncio.run(main())
    print("RSS %d -> %d kB, fds %d -> %d" % (rss0, rss1, fds0, fds1))
    assert alive == 0
    assert fds1 == fds0
    assert rss1 - rss0 < 2048, (rss0, rss1)


def test_a_workflow_with_tool_files_frees_its_engine_with_the_thread():
    import threading

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "examples", "bundle", "workflows", "ask.yaml")
    tools = os.path.join(root, "examples", "bundle", "tools.yaml")

    def work():
        wf = ice.Workflow.load(path, tools=[tools])
        assert wf.run({"query": "x"}, store=False).success

    work()  # this thread's engines now exist
    fds0 = fd_count()
    for _ in range(3):
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    gc.collect()
    assert fd_count() == fds0
