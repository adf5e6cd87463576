"""Workflow and Result: SPEC §13 over the C API."""

import asyncio
import os
import sys
import threading

from . import _engine as E
from . import _lib as L


class Result:
    """The result of a run (SPEC §11.1), as plain dicts, lists and strings."""

    __module__ = "ice"

    __slots__ = ("run_id", "workflow", "status", "success", "output", "nodes",
                 "errors", "metrics", "_raw")

    def __init__(self, raw):
        self._raw = raw
        self.run_id = raw.get("run_id")
        self.workflow = raw.get("workflow")
        self.status = raw.get("status")
        self.success = bool(raw.get("success"))
        self.output = raw.get("output", {})
        self.nodes = raw.get("nodes", {})
        self.errors = raw.get("errors", [])
        self.metrics = raw.get("metrics", {})

    @property
    def error(self):
        """The `errors` lines joined, or None (iceOS results have .error)."""
        return "; ".join(self.errors) if self.errors else None

    def to_dict(self):
        """The result object as `ice run` prints it."""
        return self._raw

    def __getitem__(self, key):
        return self._raw[key]

    def __repr__(self):
        return "<ice.Result %s %s success=%s nodes=%d>" % (
            self.run_id, self.status, self.success, len(self.nodes))


def _node_dict(n):
    if isinstance(n, dict):
        return n
    for name in ("to_dict", "model_dump"):
        f = getattr(n, name, None)
        if callable(f):
            return f()
    raise TypeError("a node must be a dict or a node config, not %s" % type(n).__name__)


class Workflow:
    """A workflow built from nodes (dicts or node config objects), or
    loaded from a file with Workflow.load(). Constructors check nothing:
    validate() and execute() do."""

    __module__ = "ice"

    def __init__(self, nodes=None, name=None, version=None, **top_level_keys):
        self.nodes = list(nodes) if nodes is not None else []
        self._name = name
        self.version = version
        self.top_level = dict(top_level_keys)
        self._path = None
        self._tools = ()
        self._cache = {}  # engine -> (key, wf pointer, warnings)

    @classmethod
    def load(cls, path, tools=None):
        """A workflow file (JSON or YAML, SPEC §1); `tools` names tool files
        (SPEC §1.1) whose tools and agents it may use."""
        wf = cls()
        wf._path = os.path.abspath(os.fspath(path))
        wf._tools = tuple(os.path.abspath(os.fspath(t)) for t in (tools or ()))
        return wf

    @property
    def name(self):
        for c in list(self._cache.values()):
            return L.ice_workflow_name(c[1]).decode()
        return self._name

    @name.setter
    def name(self, value):
        self._name = value

    @property
    def path(self):
        """The file of a loaded workflow, else None."""
        return self._path

    # -- compiling

    def _label(self):
        if self._path is not None:
            return self._path
        return "<workflow %s>" % (self._name or "workflow").replace("/", "_")

    def _document(self):
        doc = {"name": self._name if self._name is not None else "workflow"}
        if self.version is not None:
            doc["version"] = self.version
        doc.update(self.top_level)
        nodes = []
        problems = []
        for i, n in enumerate(self.nodes):
            try:
                nodes.append(_node_dict(n))
            except Exception as e:
                problems.append("%s: error: node %d: %s" % (self._label(), i + 1, e))
        doc["nodes"] = nodes
        return doc, problems

    def _source(self):
        """(cache key, text) of what would be compiled now."""
        if self._path is not None:
            try:
                with open(self._path, "rb") as f:
                    text = f.read()
            except OSError as e:
                raise E.ValidationError(
                    ["%s: error: cannot read the workflow: %s" % (self._path, e.strerror)]
                ) from None
            return text, text
        doc, problems = self._document()
        if problems:
            raise E.ValidationError(problems)
        try:
            text = E.dumps(doc)
        except (TypeError, ValueError) as e:
            raise E.ValidationError(["%s: error: %s" % (self._label(), e)]) from None
        return text, text

    def _compiled(self):
        """(engine, pointer, warnings, text) on this thread's engine,
        compiled again when the workflow changed since the last time."""
        engine = E.engine_for(self._tools)
        engine.collect()
        key, text = self._source()
        c = self._cache.get(engine)
        if c is not None and c[0] == key:
            return engine, c[1], c[2], text
        label = self._label().encode()
        if self._path is not None:
            def load(out, d):
                return L.ice_workflow_load(engine.ptr, label, out, d)
        else:
            def load(out, d):
                doc = E.text_to_json(text)
                try:
                    return L.ice_workflow_from_json(engine.ptr, label, doc, out, d)
                finally:
                    L.decref(doc)
        ptr, warnings = E.compile_workflow(engine, self, load)
        self._cache[engine] = (key, ptr, warnings)
        if c is not None:
            engine.release_workflow(c[1])
        return engine, ptr, warnings, text

    def __del__(self):
        try:
            if sys.is_finalizing():
                return
            cache, self._cache = self._cache, {}
            for engine, c in cache.items():
                engine.release_workflow(c[1])
        except Exception:
            pass

    # -- the API

    def validate(self):
        """Checks the workflow; raises ValidationError with every problem,
        else returns the list of warnings."""
        return list(self._compiled()[2])

    def graph(self, format="mermaid"):
        """The graph as Mermaid ("mermaid") or Graphviz dot ("dot") text."""
        _, ptr, _, _ = self._compiled()
        out = L.c_void_p()
        rc = L.ice_workflow_graph(ptr, format.encode(), L.ctypes.byref(out))
        if rc != 0:
            raise ValueError("graph: %s" % L.strerror(rc))
        return L.take_string(out.value)

    async def execute(self, inputs=None, *, on_event=None, store=None, answers=None,
                      max_parallel=0, max_wait=60.0):
        """Runs the workflow on the running asyncio loop; returns a Result.

        inputs: the run's inputs (a dict). on_event: called with each event
        (a dict) in seq order, on the loop's thread; it may be a coroutine
        function. store: None = the default store (SPEC §9), False = none,
        else the path of a store. answers: node id -> answer for human
        nodes. max_parallel: 0 = the workflow's. max_wait: as `ice run
        --max-wait` (None = wait in-process for ever)."""
        engine, ptr, _, text = self._compiled()
        return Result(await engine.execute(
            ptr, inputs, on_event, store, answers, max_parallel, max_wait,
            self._label(), text))

    def run(self, inputs=None, **kwargs):
        """execute(), synchronously, on an event loop of this thread's own.
        Not from inside a running event loop: await execute() there."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("Workflow.run() inside a running event loop: "
                               "use `await wf.execute()`")
        loop = _sync_loop()
        task = loop.create_task(self.execute(inputs, **kwargs))
        try:
            return loop.run_until_complete(task)
        except BaseException:
            # KeyboardInterrupt: cancel the run, and wait until it stopped
            # (its processes killed, its coroutines cancelled).
            if not task.done():
                task.cancel()
                try:
                    loop.run_until_complete(task)
                except BaseException:
                    pass
            raise

    def __repr__(self):
        if self._path is not None:
            return "<ice.Workflow %s>" % self._path
        return "<ice.Workflow %s, %d nodes>" % (self._name, len(self.nodes))


def _sync_loop():
    st = E.thread_state()
    if st.loop is None or st.loop.is_closed():
        st.loop = asyncio.new_event_loop()
        if threading.current_thread() is threading.main_thread():
            import atexit

            atexit.register(st.loop.close)
    return st.loop
