"""The engine, its asyncio driver, and executors and tools written in Python.

One engine per thread (plus one per workflow loaded with tool files). Its
libuv loop never runs on a thread of its own: the asyncio loop of the
thread watches libuv's backend descriptor (an epoll fd that is readable
when any of libuv's own descriptors is) and mirrors libuv's next timer,
and runs `uv_run(UV_RUN_NOWAIT)` when either fires. The engine's drain
gives the loop back after 2 ms of work (its idle handle then makes
uv_backend_timeout 0, which is mirrored as call_soon), so a long run of
synchronous nodes never starves other coroutines.

Executors and tools written in Python are registered with the C API
(ice_register_node with an ABI 2 table, ice_register_tool). Their start
and cancel hooks are ctypes callbacks shared by every type and tool; the
table's `data` names the Python function. A coroutine becomes an asyncio
task; the engine's cancel hook cancels it; its end completes the attempt
with ice_task_done or ice_task_fail. Every ctypes callback object and
every table lives in this module for as long as the process does, so the
engine can never call a freed one.
"""

import asyncio
import ctypes
import dataclasses
import inspect
import itertools
import json
import os
import sys
import threading
import traceback
import warnings
import weakref

from . import _lib as L


class IceError(RuntimeError):
    """An error of the engine itself (not a failed node: that is data)."""

    __module__ = "ice"


class ValidationError(ValueError):
    """A workflow or its inputs are invalid. `diagnostics` lists every
    problem as `FILE:LINE:COL: error: MESSAGE`; `warnings` the warnings."""

    __module__ = "ice"

    def __init__(self, diagnostics, warnings=()):
        self.diagnostics = list(diagnostics)
        self.warnings = list(warnings)
        super().__init__("\n".join(self.diagnostics) or "invalid workflow")


class Config(dict):
    """A node's config as written: a dict that also allows attribute
    access (`cfg.tool_name`)."""

    __module__ = "ice"

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


# ---- JSON between Python and jansson ---------------------------------------


def _default(o):
    if hasattr(o, "model_dump"):  # pydantic v2 models (iceOS's)
        return o.model_dump()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError("%s is not JSON-compatible" % type(o).__name__)


def dumps(v):
    return json.dumps(v, default=_default, allow_nan=False, separators=(",", ":"))


def to_json(v):
    """A new reference to a json_t holding v; ValueError/TypeError when v
    is not JSON-compatible."""
    return text_to_json(dumps(v))


def text_to_json(text):
    """A new reference to the json_t of JSON text (str or bytes)."""
    b = text.encode("utf-8") if isinstance(text, str) else text
    err = ctypes.create_string_buffer(512)
    p = L.json_loadb(b, len(b), L.JSON_DECODE_ANY | L.JSON_ALLOW_NUL, err)
    if not p:
        text = err.raw[92 : 92 + 160].split(b"\0", 1)[0].decode("utf-8", "replace")
        raise ValueError("not JSON-compatible: " + text)
    return p


def to_py(ptr, hook=None):
    """A borrowed json_t as Python values (None for NULL)."""
    if not ptr:
        return None
    return json.loads(L.take_string(L.ice_json_format(ptr, 0)), object_hook=hook)


def take_py(ptr, hook=None):
    """A new reference to a json_t as Python values; the reference is
    dropped."""
    try:
        return to_py(ptr, hook)
    finally:
        L.decref(ptr)


def diags_of(d):
    """(errors, warnings) of an ice_diags_t, formatted; frees the items."""
    errors, warnings = [], []
    try:
        for i in range(d.count):
            item = d.items[i]
            text = L.take_string(L.ice_diag_format(ctypes.byref(item)))
            (warnings if item.severity == L.ICE_DIAG_WARNING else errors).append(text)
    finally:
        L.ice_diags_free(ctypes.byref(d))
    return errors, warnings


# ---- registries (process-wide; every engine gets every entry) --------------

_node_types = {}  # type name -> Python function
_tool_funcs = {}  # tool name -> Python function
_type_ids = {}  # type name -> id (the executor's data)
_tool_ids = {}  # tool name -> id (the tool's data)
_by_id = {}  # id -> type or tool name
_tables = {}  # id -> a ctypes table and its strings, kept for the process
_ids = itertools.count(1)

_engines = weakref.WeakSet()
_by_ptr = weakref.WeakValueDictionary()  # engine address -> Engine
_attempts = {}  # task address -> _Attempt (async attempts in flight)
_compiled = {}  # compile-hook id -> (weakref to Workflow, config text)
_runs = {}  # run id (int) -> _RunState
_subs = {}  # subscription id (int) -> _Sub
_local = threading.local()  # .state: the _ThreadState; .wf: being compiled


def _is_builtin_clash(rc, name, mine):
    return rc == L.ICE_EEXIST and name not in mine


def _registered():
    """Every engine registers what it lacks on its own thread, before its
    next validation (a registry is not for other threads to change)."""
    for e in list(_engines):
        e.stale = True


def register_node(type_name):
    """Decorator: `fn(workflow, cfg, ctx)`, plain or async, runs nodes of
    type `type_name` (the form of iceOS's @register_node)."""
    if not isinstance(type_name, str) or not type_name:
        raise TypeError("register_node: the type name must be a non-empty string")

    def deco(fn):
        if not callable(fn):
            raise TypeError("register_node: %r is not callable" % (fn,))
        old = _node_types.get(type_name)
        _node_types[type_name] = fn
        try:
            # This thread's engine says now if the name is a built-in one.
            default_engine()._add_type(type_name)
        except Exception:
            if old is None:
                del _node_types[type_name]
            else:
                _node_types[type_name] = old
            raise
        _registered()
        return fn

    return deco


def register_tool(name):
    """Decorator: `fn(**args)`, plain or async, is the tool `name`; its
    return value is the tool's output."""
    if not isinstance(name, str) or not name:
        raise TypeError("register_tool: the tool name must be a non-empty string")

    def deco(fn):
        if not callable(fn):
            raise TypeError("register_tool: %r is not callable" % (fn,))
        _tool_funcs[name] = fn
        default_engine()._add_tool(name)
        _registered()
        return fn

    return deco


def _executor_table(name):
    tid = _type_ids.get(name)
    if tid is not None:
        return _tables[tid][0]
    tid = next(_ids)
    b = name.encode()
    t = L.Executor()
    t.abi = L.ICE_EXECUTOR_ABI
    t.type = b
    t.fields = None  # any field besides the common ones
    t.start = _EXEC_START_ADDR
    t.cancel = _EXEC_CANCEL_ADDR
    t.data = tid
    t.compile = _COMPILE_ADDR
    t.free_compiled = _FREE_COMPILED_ADDR
    _tables[tid] = (t, b)
    _type_ids[name] = tid
    _by_id[tid] = name
    return t


def _tool_table(name):
    tid = _tool_ids.get(name)
    if tid is not None:
        return _tables[tid][0]
    tid = next(_ids)
    b = name.encode()
    t = L.Tool(b, _TOOL_START_ADDR, _TOOL_CANCEL_ADDR, tid)
    _tables[tid] = (t, b)
    _tool_ids[name] = tid
    _by_id[tid] = name
    return t


# ---- attempts of Python executors and tools ---------------------------------


class _Attempt:
    __slots__ = ("task", "engine", "future")

    def __init__(self, task, engine):
        self.task = task
        self.engine = engine
        self.future = None


def _message(exc):
    return str(exc) or type(exc).__name__


def _fail(t, kind, message):
    L.ice_task_fail(t, kind.encode(), b"%s", message.encode("utf-8", "replace"))


def _log_traceback(t, exc):
    for chunk in traceback.format_exception(type(exc), exc, exc.__traceback__):
        for line in chunk.rstrip("\n").split("\n"):
            b = line.encode("utf-8", "replace")
            L.ice_task_log(t, b"stderr", b, len(b))


def _complete(t, r):
    """Completes attempt t with what the Python function returned."""
    if (
        r is not None
        and not isinstance(r, (dict, list, tuple, str, int, float, bool))
        and hasattr(r, "success")
        and hasattr(r, "output")
    ):  # iceOS's NodeExecutionResult
        if not r.success:
            _fail(t, "tool_error", str(getattr(r, "error", None) or "failed"))
            return
        r = r.output
    if r is None:
        r = {}  # no output; a NULL would fail the attempt (out of memory)
    try:
        p = to_json(r)
    except (TypeError, ValueError) as e:
        _fail(t, "tool_error", "the output is not JSON-compatible: %s" % e)
        return
    L.ice_task_done(t, p)


def _begin(t, fn, args, kwargs):
    """Calls fn; completes t now, or when the awaitable it returns ends."""
    engine = _by_ptr[L.ice_task_engine(t)]
    try:
        r = fn(*args, **kwargs)
        if inspect.isawaitable(r):
            fut = asyncio.ensure_future(r, loop=engine.aloop)
    except Exception as e:
        _log_traceback(t, e)
        _fail(t, "tool_error", _message(e))
        return
    if not inspect.isawaitable(r):
        _complete(t, r)
        return
    a = _Attempt(t, engine)
    a.future = fut
    _attempts[t] = a
    fut.add_done_callback(lambda f: _settle(a, f))


def _settle(a, fut):
    """An async attempt ended (returned, raised or was cancelled)."""
    if _attempts.get(a.task) is not a:
        return
    del _attempts[a.task]
    t = a.task
    try:
        if fut.cancelled():
            _fail(t, "cancelled", "cancelled")
        else:
            exc = fut.exception()
            if exc is not None:
                _log_traceback(t, exc)
                _fail(t, "tool_error", _message(exc))
            else:
                _complete(t, fut.result())
    finally:
        a.engine.kick()


def _guard(what, t, fn, *args):
    """Runs a callback from C: nothing may escape into ctypes."""
    try:
        fn(t, *args)
    except BaseException as e:  # noqa: B902 -- a ctypes callback must not raise
        try:
            _fail(t, "internal", "%s: %s" % (what, _message(e)))
        except BaseException:
            pass
        _report(e, what)


def _report(exc, what):
    loop = None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    if loop is not None:
        loop.call_exception_handler({"message": "ice: " + what, "exception": exc})
    else:
        traceback.print_exception(type(exc), exc, exc.__traceback__)


def _exec_start(t):
    name = _by_id[L.ice_task_executor_data(t)]
    fn = _node_types[name]
    entry = _compiled.get(L.ice_task_compiled(t) or 0)
    if entry is not None:
        wf = entry[0]()
        cfg = json.loads(entry[1], object_hook=Config)
    else:
        wf = None
        cfg = to_py(L.ice_task_config(t), Config)
    ctx = take_py(L.ice_task_context(t))
    _begin(t, fn, (wf, cfg, ctx), {})


def _tool_start(t, args, data):
    fn = _tool_funcs[_by_id[data]]
    kwargs = to_py(args) or {}
    _begin(t, fn, (), kwargs)


def _cancel(t, data=None):
    a = _attempts.get(t)
    if a is not None and a.future is not None:
        a.future.cancel()


def _compile(c):
    wf = getattr(_local, "wf", None)
    text = L.take_string(L.ice_json_format(L.ice_compile_config(c), 0))
    cid = next(_ids)
    _compiled[cid] = (weakref.ref(wf) if wf is not None else _none, text)
    return cid


def _none():
    return None


@L.EXEC_START
def _c_exec_start(t):
    _guard("executor", t, _exec_start)


@L.EXEC_CANCEL
def _c_exec_cancel(t):
    try:
        _cancel(t)
    except BaseException as e:  # noqa: B902
        _report(e, "cancel")


@L.COMPILE
def _c_compile(c):
    try:
        return _compile(c)
    except BaseException as e:  # noqa: B902
        _report(e, "compile")
        return None


@L.FREE_COMPILED
def _c_free_compiled(comp, data):
    _compiled.pop(comp, None)


@L.TOOL_START
def _c_tool_start(t, args, data):
    _guard("tool", t, _tool_start, args, data)


@L.TOOL_CANCEL
def _c_tool_cancel(t, data):
    try:
        _cancel(t)
    except BaseException as e:  # noqa: B902
        _report(e, "cancel")


@L.RUN_DONE
def _c_run_done(run, data):
    st = _runs.get(data)
    if st is not None:
        st.finished = True
        if st.future is not None and not st.future.done():
            st.future.set_result(None)


@L.EVENT
def _c_event(ev, data):
    sub = _subs.get(data)
    if sub is None:
        return
    try:
        sub.deliver(ev)
    except BaseException as e:  # noqa: B902
        _report(e, "on_event raised")


def _addr(f):
    return ctypes.cast(f, ctypes.c_void_p).value


_EXEC_START_ADDR = _addr(_c_exec_start)
_EXEC_CANCEL_ADDR = _addr(_c_exec_cancel)
_COMPILE_ADDR = _addr(_c_compile)
_FREE_COMPILED_ADDR = _addr(_c_free_compiled)
_TOOL_START_ADDR = _addr(_c_tool_start)
_TOOL_CANCEL_ADDR = _addr(_c_tool_cancel)
_RUN_DONE_ADDR = _addr(_c_run_done)
_EVENT_ADDR = _addr(_c_event)


# Runs of workflows with more nodes than this yield between the steps
# that follow their end (result, parse, free).
_BIG_RUN = 1000


async def _breathe():
    """Lets every coroutine that is ready, or that a due timer wakes, take
    a step first: a timer's callback and the step it schedules take a
    loop turn each."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class _RunState:
    __slots__ = ("finished", "future")

    def __init__(self):
        self.finished = False
        self.future = None


class _Sub:
    """on_event for one run and its child runs (ids `RUN.xxxxxxxx`)."""

    __slots__ = ("run_id", "prefix", "fn", "loop")

    def __init__(self, run_id, fn, loop):
        self.run_id = run_id
        self.prefix = run_id + "."
        self.fn = fn
        self.loop = loop

    def deliver(self, ptr):
        ev = to_py(ptr)
        rid = ev.get("run_id") or ""
        if rid != self.run_id and not rid.startswith(self.prefix):
            return
        r = self.fn(ev)
        if inspect.isawaitable(r):
            asyncio.ensure_future(r, loop=self.loop)


# ---- the engine and its driver ----------------------------------------------


class Engine:
    """An ice engine on a libuv loop that an asyncio loop drives."""

    def __init__(self, tool_files=()):
        opts = L.EngineOpts(1 if os.environ.get("ICE_VIRTUAL_CLOCK") == "1" else 0)
        p = ctypes.c_void_p()
        rc = L.ice_engine_new(ctypes.byref(p), None, ctypes.byref(opts))
        if rc != 0:
            raise IceError("ice: cannot create the engine: " + L.strerror(rc))
        self.ptr = p.value
        self.pid = os.getpid()
        self.thread = threading.get_ident()
        self.uvloop = L.ice_engine_loop(self.ptr)
        self.fd = L.uv_backend_fd(self.uvloop)
        self.aloop = None
        self.runs = 0
        self.workflows = 0  # compiled workflows not yet freed
        self.tool_files = tuple(tool_files)
        self.closed = False
        self.stale = False  # the registry changed since it was synced
        self._orphan = False  # its thread ended
        self._lock = threading.Lock()
        self._garbage = []  # workflows released from other threads
        self._to_free = []  # runs of big workflows, freed a turn later
        self._soon = None
        self._timer = None
        self._timer_when = 0.0
        self._pumping = False
        self._types = set()
        self._tools = set()
        self._stores = {}  # path or None (default) -> [store address, users]
        _by_ptr[self.ptr] = self
        _engines.add(self)
        try:
            self._sync()
            for f in self.tool_files:
                d = L.Diags()
                rc = L.ice_engine_add_tool_file(self.ptr, f.encode(), ctypes.byref(d))
                errors, _ = diags_of(d)
                if rc != 0:
                    raise ValidationError(
                        errors or ["%s: error: %s" % (f, L.strerror(rc))])
        except BaseException:
            self._orphan = True
            with self._lock:
                self._close_locked()
            raise

    def _sync(self):
        self.stale = False
        for name in list(_node_types):
            self._add_type(name)
        for name in list(_tool_funcs):
            self._add_tool(name)

    # -- registry

    def _add_type(self, name):
        if name in self._types:
            return
        rc = L.ice_register_node(self.ptr, ctypes.byref(_executor_table(name)))
        if _is_builtin_clash(rc, name, self._types):
            raise ValueError("register_node: '%s' is a node type built into ice" % name)
        if rc != 0:
            raise IceError("register_node(%r): %s" % (name, L.strerror(rc)))
        self._types.add(name)

    def _add_tool(self, name):
        if name in self._tools:
            return
        rc = L.ice_register_tool(self.ptr, ctypes.byref(_tool_table(name)))
        if rc != 0:
            raise IceError("register_tool(%r): %s" % (name, L.strerror(rc)))
        self._tools.add(name)

    # -- the asyncio driver

    def attach(self, aloop):
        """Makes aloop drive this engine's libuv loop."""
        if self.aloop is aloop:
            return
        self._flush_frees()  # runs that ended, freed late on the old loop
        old = self.aloop
        if old is not None and not old.is_closed():
            if self.runs:
                raise IceError("ice: this engine has runs on another event loop")
            old.remove_reader(self.fd)
            for h in (self._soon, self._timer):
                if h is not None:
                    h.cancel()
        self._soon = self._timer = None
        self.aloop = aloop
        aloop.add_reader(self.fd, self._pump)
        self.kick()  # whatever the loop has left from before

    def kick(self):
        """Runs the libuv loop once, soon: after anything changes it from
        outside (a task completed, a run started, cancelled or freed)."""
        if self._soon is None and self.aloop is not None and not self.aloop.is_closed():
            self._soon = self.aloop.call_soon(self._pump)

    def _on_timer(self):
        self._timer = None
        self._pump()

    def _pump(self):
        self._soon = None
        if self._pumping or self.closed:
            return
        self._pumping = True
        try:
            L.uv_run(self.uvloop, L.UV_RUN_NOWAIT)
        finally:
            self._pumping = False
        if self._garbage:
            self.collect()
        self._rearm()

    def _rearm(self):
        """Mirrors libuv's next timer on the asyncio loop."""
        uv = self.uvloop
        t = L.uv_backend_timeout(uv) if L.uv_loop_alive(uv) else -1
        if t == 0:
            self.kick()
            return
        if t < 0:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        # Due at libuv's cached now + t; that now may be older than the
        # real one by the time this turn took.
        left = (L.uv_now(uv) + t) - L.uv_hrtime() / 1e6
        if left <= 0:
            self.kick()
            return
        when = self.aloop.time() + left / 1000.0
        if self._timer is not None:
            if abs(self._timer_when - when) < 0.0005:
                return
            self._timer.cancel()
        self._timer_when = when
        self._timer = self.aloop.call_at(when, self._on_timer)

    # -- stores (SPEC §9)

    def store_acquire(self, store):
        """The store to record a run in (None = the default one), attached
        while it has runs; None for store=False."""
        if store is False:
            return None
        key = None if store is None else os.path.abspath(os.fspath(store))
        entry = self._stores.get(key)
        if entry is None:
            p = ctypes.c_void_p()
            msg = ctypes.create_string_buffer(512)
            rc = L.ice_store_open(
                ctypes.byref(p), None if key is None else key.encode(), msg, 512
            )
            if rc != 0:
                raise IceError("ice: cannot open the store: " + msg.value.decode())
            entry = self._stores[key] = [p.value, 0]
        if entry[1] == 0:
            rc = L.ice_store_attach(entry[0], self.ptr)
            if rc != 0:
                raise IceError("ice: cannot attach the store: " + L.strerror(rc))
        entry[1] += 1
        return entry

    def store_release(self, entry):
        entry[1] -= 1
        if entry[1] == 0:
            L.ice_store_detach(entry[0], self.ptr)

    # -- lifetime: an engine belongs to its thread

    def collect(self):
        """On the engine's thread: frees the workflows released from other
        threads, and registers the types and tools it lacks."""
        if self._garbage and not self._pumping:
            with self._lock:
                g, self._garbage = self._garbage, []
                for p in g:
                    self._free_workflow_locked(p)
        if self.stale:
            self._sync()

    def add_workflow(self):
        with self._lock:
            self.workflows += 1

    def release_workflow(self, ptr):
        """Frees a compiled workflow: now when that is safe (on the
        engine's thread, outside uv_run; or once its thread ended), else
        on the engine's thread later."""
        with self._lock:
            if self.closed:
                return
            if self._orphan or (
                threading.get_ident() == self.thread and not self._pumping
            ):
                self._free_workflow_locked(ptr)
            else:
                self._garbage.append(ptr)

    def _free_workflow_locked(self, ptr):
        L.ice_workflow_free(ptr)
        self.workflows -= 1
        if self._orphan and self.workflows == 0:
            self._close_locked()

    def orphan(self):
        """Its thread ended: free it once its last workflow is freed."""
        with self._lock:
            self._orphan = True
            g, self._garbage = self._garbage, []
            for p in g:
                self._free_workflow_locked(p)
            if self.workflows == 0:
                self._close_locked()

    def _close_locked(self):
        if self.closed or self.runs or os.getpid() != self.pid:
            return
        aloop = self.aloop
        if (
            aloop is not None
            and not aloop.is_closed()
            and threading.get_ident() == self.thread
        ):
            try:
                aloop.remove_reader(self.fd)
            except Exception:
                pass
            for h in (self._soon, self._timer):
                if h is not None:
                    h.cancel()
        self.aloop = self._soon = self._timer = None
        msg = ctypes.create_string_buffer(512)
        for entry in self._stores.values():
            L.ice_store_close(entry[0], msg, 512)
        self._stores.clear()
        if L.ice_engine_free(self.ptr) == 0:
            self.closed = True
            _by_ptr.pop(self.ptr, None)

    # -- a run

    async def execute(self, wfp, inputs, on_event, store, answers, max_parallel,
                      max_wait, label, text):
        """Runs the compiled workflow wfp (label and text: its name in the
        store and what its hash is of); returns the result as a dict."""
        aloop = asyncio.get_running_loop()
        self.attach(aloop)
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            raise TypeError("execute: inputs must be a dict")
        opts = L.RunOpts()
        owned = []
        try:
            opts.inputs = to_json(inputs)
            owned.append(opts.inputs)
        except (TypeError, ValueError) as e:
            raise ValidationError(["inputs: error: %s" % e]) from None
        try:
            if answers:
                opts.answers = to_json({k: str(v) for k, v in answers.items()})
                owned.append(opts.answers)
            opts.max_parallel = int(max_parallel or 0)
            opts.suspend_after = -1.0 if max_wait is None else float(max_wait)
            st = self.store_acquire(store)
            try:
                if st is not None:
                    opts.commit = L.STORE_COMMIT
                    opts.cache_get = L.STORE_CACHE_GET
                    opts.cache_put = L.STORE_CACHE_PUT
                    opts.commit_data = opts.cache_data = st[0]
                return await self._execute(wfp, opts, on_event, st, aloop, label, text)
            finally:
                if st is not None:
                    self.store_release(st)
        finally:
            for p in owned:
                L.decref(p)

    async def _execute(self, wfp, opts, on_event, st, aloop, label, text):
        run = ctypes.c_void_p()
        d = L.Diags()
        rc = L.ice_run_new(self.ptr, wfp, ctypes.byref(opts), ctypes.byref(run), ctypes.byref(d))
        errors, warns = diags_of(d)
        if rc != 0:
            if rc in (L.ICE_EINPUT, L.ICE_EWORKFLOW) or errors:
                raise ValidationError(errors or [L.strerror(rc)], warns)
            raise IceError("ice: cannot create the run: " + L.strerror(rc))
        run = run.value
        self.runs += 1
        rid = L.ice_run_id(run).decode()
        key = next(_ids)
        state = _RunState()
        sub = None
        cancelled = big = False
        try:
            if st is not None:
                self._store_begin(st, run, rid, wfp, opts, label, text)
            if on_event is not None:
                _subs[key] = _Sub(rid, on_event, aloop)
                sub = ctypes.c_void_p()
                rc = L.ice_subscribe(self.ptr, None, _EVENT_ADDR, key, ctypes.byref(sub))
                if rc != 0:
                    raise IceError("ice: cannot subscribe: " + L.strerror(rc))
            _runs[key] = state
            rc = L.ice_run_start(run, _RUN_DONE_ADDR, key)
            if rc != 0:
                raise IceError("ice: cannot start the run: " + L.strerror(rc))
            self.kick()
            while not state.finished:
                state.future = aloop.create_future()
                try:
                    await state.future
                except asyncio.CancelledError:
                    # The caller cancelled execute(): cancel the run, and
                    # return only once it stopped.
                    cancelled = True
                    L.ice_run_cancel(run)
                    self.kick()
            # A big run's result takes milliseconds to build, print and
            # parse, and its free as many: each gets a turn of its own.
            big = L.ice_workflow_node_count(wfp) > _BIG_RUN
            if big:
                await _breathe()
            out = L.take_string(L.ice_json_format(L.ice_run_result(run), 0))
            if big:
                await _breathe()
            res = json.loads(out)
            if st is not None:
                msg = ctypes.create_string_buffer(512)
                if L.ice_store_finish(st[0], rid.encode(), L.ice_run_result(run), msg, 512):
                    warnings.warn("ice: cannot record the end of run %s: %s"
                                  % (rid, msg.value.decode()))
        finally:
            _runs.pop(key, None)
            if sub is not None and sub.value:
                L.ice_unsubscribe(self.ptr, sub)
            _subs.pop(key, None)
            if big and not cancelled:
                # After two turns: a coroutine that a timer woke meanwhile
                # gets its step first.
                self._to_free.append(run)
                aloop.call_soon(aloop.call_soon, self._flush_frees)
            else:
                self._free_run(run)
        if cancelled:
            raise asyncio.CancelledError()
        return res

    def _flush_frees(self):
        while self._to_free:
            self._free_run(self._to_free.pop())

    def _free_run(self, run):
        L.ice_run_free(run)
        self.runs -= 1
        self.kick()  # the run's handles close on the next turn

    def _store_begin(self, st, run, rid, wfp, opts, label, text):
        msg = ctypes.create_string_buffer(512)
        b = text if isinstance(text, bytes) else text.encode()
        h = L.take_string(L.ice_store_hash(b, len(b)))
        tools = L.ice_engine_tool_files(self.ptr) if self.tool_files else None
        try:
            rc = L.ice_store_begin_tools(
                st[0], rid.encode(), L.ice_workflow_name(wfp), label.encode(),
                h.encode(), opts.inputs, tools, msg, 512,
            )
        finally:
            L.decref(tools)
        if rc != 0:
            raise IceError("ice: cannot record the run in the store: " + msg.value.decode())


class _ThreadState:
    """What a thread owns: its engines (one per set of tool files, the
    empty set being the default engine) and the event loop of
    Workflow.run(). Dropped, and its engines freed, when the thread ends."""

    def __init__(self):
        self.pid = os.getpid()
        self.engines = {}
        self.loop = None

    def __del__(self):
        if sys.is_finalizing() or os.getpid() != self.pid:
            return
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.close()
            except Exception:
                pass
        for e in self.engines.values():
            e.orphan()


def thread_state():
    st = getattr(_local, "state", None)
    if st is None or st.pid != os.getpid():
        st = _local.state = _ThreadState()
    return st


def engine_for(tool_files=()):
    """This thread's engine for a set of tool files (created on first
    use; the files are read then)."""
    st = thread_state()
    e = st.engines.get(tool_files)
    if e is None or e.closed:
        e = st.engines[tool_files] = Engine(tool_files)
    return e


def default_engine():
    """This thread's engine without tool files."""
    return engine_for(())


def compile_workflow(engine, wf, load):
    """Runs load(diags) -> (rc, wf pointer) with wf as the workflow that
    compile hooks see; returns (pointer, warnings) or raises
    ValidationError."""
    d = L.Diags()
    out = ctypes.c_void_p()
    prev = getattr(_local, "wf", None)
    _local.wf = wf
    try:
        rc = load(out, d)
    finally:
        _local.wf = prev
    errors, warnings = diags_of(d)
    if rc != 0:
        if out.value:
            L.ice_workflow_free(out.value)
        raise ValidationError(errors or [L.strerror(rc)], warnings)
    engine.add_workflow()
    return out.value, warnings


def _after_fork():
    _local.__dict__.clear()
    _attempts.clear()
    _runs.clear()
    _subs.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
