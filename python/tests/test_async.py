"""asyncio integration: engine work, Python executors and other
coroutines interleave on one thread; cancellation reaches coroutines."""

import asyncio
import threading
import time

import ice

STARTED = {}
CANCELLED = []


@ice.register_node("t_nap")
async def t_nap(workflow, cfg, ctx):
    STARTED[cfg.id] = threading.get_ident()
    await asyncio.sleep(cfg.seconds)
    return {"slept": cfg.seconds}


@ice.register_node("t_stuck")
async def t_stuck(workflow, cfg, ctx):
    STARTED[cfg.id] = threading.get_ident()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        CANCELLED.append(cfg.id)
        raise
    return {}


@ice.register_tool("t_fail_later")
async def t_fail_later(seconds, message):
    await asyncio.sleep(seconds)
    raise RuntimeError(message)


def test_executors_sleep_beside_the_sleep_tool_and_a_ticker():
    nodes = [{"id": "py%d" % i, "type": "t_nap", "seconds": 0.4} for i in range(4)]
    nodes.append({"id": "c", "type": "tool", "tool_name": "sleep",
                  "tool_args": {"seconds": 0.3}})
    wf = ice.Workflow(nodes, name="interleave")

    async def main():
        gaps = []
        stop = asyncio.Event()

        async def ticker():
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.ensure_future(ticker())
        t0 = time.monotonic()
        r = await wf.execute(store=False)
        elapsed = time.monotonic() - t0
        stop.set()
        await tick
        return r, elapsed, gaps

    r, elapsed, gaps = asyncio.run(main())
    assert r.success, r.errors
    assert r.output["c"] == {"slept": 0.3}
    assert all(r.output["py%d" % i] == {"slept": 0.4} for i in range(4))
    assert elapsed < 0.6, elapsed  # one after the other would be 1.9 s
    assert max(gaps) < 0.1, max(gaps)
    assert len(gaps) > 40
    # The executors ran on this thread, the one the engine runs on.
    assert {STARTED["py%d" % i] for i in range(4)} == {threading.get_ident()}


def test_a_long_run_of_synchronous_nodes_leaves_the_loop_turns():
    nodes = [{"id": "n%d" % i, "type": "tool", "tool_name": "echo",
              "tool_args": {"i": i}, "dependencies": ["n%d" % (i - 1)] if i else []}
             for i in range(3000)]
    wf = ice.Workflow(nodes, name="chain")
    wf.validate()

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0)
                ticks += 1

        tick = asyncio.ensure_future(ticker())
        r = await wf.execute(store=False)
        stop.set()
        await tick
        return r, ticks

    r, ticks = asyncio.run(main())
    assert r.success and len(r.output) == 3000
    assert ticks > 1  # the drain gave the loop back at least once


def test_a_timeout_cancels_the_coroutine():
    CANCELLED.clear()
    wf = ice.Workflow([{"id": "late", "type": "t_stuck", "timeout_seconds": 0.2}],
                      name="timeout")
    t0 = time.monotonic()
    r = wf.run(store=False)
    assert time.monotonic() - t0 < 5
    assert r.status == "failed"
    assert r.nodes["late"]["status"] == "failed"
    assert r.nodes["late"]["error"]["kind"] == "timeout"
    assert CANCELLED == ["late"]


def test_a_timeout_is_retried_with_a_new_coroutine():
    CANCELLED.clear()
    wf = ice.Workflow([{"id": "late", "type": "t_stuck", "timeout_seconds": 0.1,
                        "retry_policy": {"max_attempts": 2, "backoff_seconds": 0.01}}],
                      name="timeout2")
    r = wf.run(store=False)
    assert r.nodes["late"]["attempts"] == 2
    assert r.nodes["late"]["error"]["kind"] == "timeout"
    assert CANCELLED == ["late", "late"]


def test_halt_cancels_a_running_executor():
    CANCELLED.clear()
    STARTED.clear()
    wf = ice.Workflow([
        {"id": "busy", "type": "t_stuck"},
        {"id": "bad", "type": "tool", "tool_name": "t_fail_later",
         "tool_args": {"seconds": 0.1, "message": "gave up"}},
    ], name="halt", failure_policy="halt")
    r = wf.run(store=False)
    assert "busy" in STARTED  # it was running when the halt came
    assert CANCELLED == ["busy"]
    assert r.status == "failed"
    assert r.nodes["busy"]["status"] == "cancelled"
    assert r.nodes["bad"]["error"] == {"kind": "tool_error", "message": "gave up"}
    assert r.errors == ["Node bad failed: gave up"]


def test_cancelling_execute_cancels_the_run():
    CANCELLED.clear()
    wf = ice.Workflow([{"id": "busy", "type": "t_stuck"},
                       {"id": "c", "type": "tool", "tool_name": "sleep",
                        "tool_args": {"seconds": 30}}], name="cancel")

    async def main():
        t = asyncio.ensure_future(wf.execute(store=False))
        await asyncio.sleep(0.1)
        t.cancel()
        t0 = time.monotonic()
        try:
            await t
        except asyncio.CancelledError:
            return time.monotonic() - t0
        raise AssertionError("execute() must raise CancelledError")

    assert asyncio.run(main()) < 1
    assert CANCELLED == ["busy"]


def test_sync_run_refuses_a_running_loop():
    wf = ice.Workflow([{"id": "a", "type": "tool", "tool_name": "echo"}], name="x")

    async def main():
        try:
            wf.run(store=False)
        except RuntimeError as e:
            return str(e)

    assert "execute" in asyncio.run(main())


def test_each_thread_runs_its_own_engine():
    wf = ice.Workflow([{"id": "a", "type": "t_nap", "seconds": 0.2}], name="threads")
    out = []

    def work():
        out.append(wf.run(store=False).status)

    threads = [threading.Thread(target=work) for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == ["completed"] * 4
    assert time.monotonic() - t0 < 1.5
