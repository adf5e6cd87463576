"""Finding libice and declaring the C API for ctypes.

The library is looked up, in order: the file (or directory) named by the
environment variable ICE_LIBRARY (ICE_LIB is accepted too), and nothing
else when it is set; the path recorded by `make install` (_libpath.py) for
an installed package, or else the `build/` directory of the checkout this
package sits in (python/../build), whatever the current directory; then
the system's search path (libice.so.0).

libuv and jansson are loaded as dependencies of libice.so: their symbols
(uv_run, uv_backend_fd, json_loadb, json_delete) are looked up through the
same handle, so the binding uses the very copies the engine uses.
"""

import ctypes
import os

c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_uint = ctypes.c_uint
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
POINTER = ctypes.POINTER


def _candidates():
    seen = []
    for var in ("ICE_LIBRARY", "ICE_LIB"):
        v = os.environ.get(var)
        if v:
            if os.path.isdir(v):
                v = os.path.join(v, "libice.so")
            seen.append((var, v))
            return seen  # an explicit choice is the only one tried
    try:
        from . import _libpath  # written by `make install`, never in a checkout

        seen.append(("installed", _libpath.LIBRARY))
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        checkout = os.path.dirname(os.path.dirname(here))
        seen.append(("checkout", os.path.join(checkout, "build", "libice.so")))
    seen.append(("system", None))
    return seen


def _load():
    tried = []
    for where, path in _candidates():
        if path is None:
            from ctypes import util  # slow to import: only when needed

            path = util.find_library("ice") or "libice.so.0"
        if where == "checkout" and not os.path.exists(path):
            tried.append("%s (%s): not built" % (path, where))
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
    raise ImportError(
        "ice: cannot load libice.so; run `make build` in the checkout, or set "
        "ICE_LIBRARY to the library's path. Tried:\n  " + "\n  ".join(tried)
    )


lib, path = _load()
libc = ctypes.CDLL(None)
libc.free.argtypes = [c_void_p]
libc.free.restype = None


# ---- structures of ice.h ---------------------------------------------------


class Diag(ctypes.Structure):
    _fields_ = [
        ("file", c_char_p),
        ("line", c_int),
        ("col", c_int),
        ("message", c_char_p),
        ("severity", c_int),
    ]


class Diags(ctypes.Structure):
    _fields_ = [("items", POINTER(Diag)), ("count", c_size_t), ("cap", c_size_t)]


class EngineOpts(ctypes.Structure):
    _fields_ = [("virtual_clock", c_int)]


class Executor(ctypes.Structure):
    """ice_executor_t, ABI 2. Function pointers are stored as addresses."""

    _fields_ = [
        ("abi", c_int),
        ("type", c_char_p),
        ("fields", c_void_p),
        ("validate", c_void_p),
        ("start", c_void_p),
        ("cancel", c_void_p),
        ("default_timeout", c_double),
        ("data", c_void_p),
        ("compile", c_void_p),
        ("free_compiled", c_void_p),
        ("flags", c_uint),
    ]


class Tool(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p),
        ("start", c_void_p),
        ("cancel", c_void_p),
        ("data", c_void_p),
    ]


class RunOpts(ctypes.Structure):
    _fields_ = [
        ("inputs", c_void_p),
        ("max_parallel", c_int),
        ("commit", c_void_p),
        ("commit_data", c_void_p),
        ("restore", c_void_p),
        ("run_id", c_char_p),
        ("seq", ctypes.c_ulonglong),
        ("suspend_after", c_double),
        ("answers", c_void_p),
        ("cache_get", c_void_p),
        ("cache_put", c_void_p),
        ("cache_data", c_void_p),
    ]


class JsonHead(ctypes.Structure):
    """The public head of jansson's json_t: its type and refcount."""

    _fields_ = [("type", c_int), ("refcount", c_size_t)]


ICE_EXECUTOR_ABI = 2
ICE_DIAG_WARNING = 1
ICE_EWORKFLOW = -4001
ICE_EINPUT = -4002
ICE_EEXIST = -17
ICE_STOP_TIMEOUT = 1
UV_RUN_NOWAIT = 2
JSON_DECODE_ANY = 0x4
JSON_ALLOW_NUL = 0x10

# ---- callback types --------------------------------------------------------

EXEC_START = ctypes.CFUNCTYPE(None, c_void_p)
EXEC_CANCEL = ctypes.CFUNCTYPE(None, c_void_p)
COMPILE = ctypes.CFUNCTYPE(c_void_p, c_void_p)
FREE_COMPILED = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
TOOL_START = ctypes.CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)
TOOL_CANCEL = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
RUN_DONE = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
EVENT = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = POINTER(c_void_p)

ice_strerror = _fn("ice_strerror", c_char_p, c_int)
ice_engine_new = _fn("ice_engine_new", c_int, P, c_void_p, POINTER(EngineOpts))
ice_engine_free = _fn("ice_engine_free", c_int, c_void_p)
ice_engine_loop = _fn("ice_engine_loop", c_void_p, c_void_p)
ice_engine_add_tool_file = _fn(
    "ice_engine_add_tool_file", c_int, c_void_p, c_char_p, POINTER(Diags)
)
ice_engine_tool_files = _fn("ice_engine_tool_files", c_void_p, c_void_p)
ice_register_node = _fn("ice_register_node", c_int, c_void_p, POINTER(Executor))
ice_register_tool = _fn("ice_register_tool", c_int, c_void_p, POINTER(Tool))

ice_diag_format = _fn("ice_diag_format", c_void_p, POINTER(Diag))
ice_diags_free = _fn("ice_diags_free", None, POINTER(Diags))

ice_compile_config = _fn("ice_compile_config", c_void_p, c_void_p)

ice_task_config = _fn("ice_task_config", c_void_p, c_void_p)
ice_task_attempt = _fn("ice_task_attempt", c_int, c_void_p)
ice_task_context = _fn("ice_task_context", c_void_p, c_void_p)
ice_task_log = _fn("ice_task_log", None, c_void_p, c_char_p, c_char_p, c_size_t)
ice_task_done = _fn("ice_task_done", None, c_void_p, c_void_p)
# Variadic in C (kind, fmt, ...): always called as (t, kind, "%s", message).
ice_task_fail = _fn("ice_task_fail", None, c_void_p, c_char_p, c_char_p, c_char_p)
ice_task_stop_reason = _fn("ice_task_stop_reason", c_int, c_void_p)
ice_task_executor_data = _fn("ice_task_executor_data", c_void_p, c_void_p)
ice_task_compiled = _fn("ice_task_compiled", c_void_p, c_void_p)
ice_task_node_id = _fn("ice_task_node_id", c_char_p, c_void_p)

ice_workflow_load = _fn(
    "ice_workflow_load", c_int, c_void_p, c_char_p, P, POINTER(Diags)
)
ice_workflow_from_json = _fn(
    "ice_workflow_from_json", c_int, c_void_p, c_char_p, c_void_p, P, POINTER(Diags)
)
ice_workflow_free = _fn("ice_workflow_free", None, c_void_p)
ice_workflow_name = _fn("ice_workflow_name", c_char_p, c_void_p)
ice_workflow_node_count = _fn("ice_workflow_node_count", c_size_t, c_void_p)
ice_workflow_graph = _fn("ice_workflow_graph", c_int, c_void_p, c_char_p, P)

ice_run_new = _fn(
    "ice_run_new", c_int, c_void_p, c_void_p, POINTER(RunOpts), P, POINTER(Diags)
)
ice_run_start = _fn("ice_run_start", c_int, c_void_p, c_void_p, c_void_p)
ice_run_cancel = _fn("ice_run_cancel", c_int, c_void_p)
ice_run_id = _fn("ice_run_id", c_char_p, c_void_p)
ice_run_result = _fn("ice_run_result", c_void_p, c_void_p)
ice_run_free = _fn("ice_run_free", None, c_void_p)

ice_subscribe = _fn("ice_subscribe", c_int, c_void_p, c_char_p, c_void_p, c_void_p, P)
ice_unsubscribe = _fn("ice_unsubscribe", None, c_void_p, c_void_p)

ice_store_open = _fn("ice_store_open", c_int, P, c_char_p, c_char_p, c_size_t)
ice_store_close = _fn("ice_store_close", c_int, c_void_p, c_char_p, c_size_t)
ice_store_path = _fn("ice_store_path", c_char_p, c_void_p)
ice_store_attach = _fn("ice_store_attach", c_int, c_void_p, c_void_p)
ice_store_detach = _fn("ice_store_detach", None, c_void_p, c_void_p)
ice_store_begin_tools = _fn(
    "ice_store_begin_tools",
    c_int,
    c_void_p,
    c_char_p,
    c_char_p,
    c_char_p,
    c_char_p,
    c_void_p,
    c_void_p,
    c_char_p,
    c_size_t,
)
ice_store_finish = _fn(
    "ice_store_finish", c_int, c_void_p, c_char_p, c_void_p, c_char_p, c_size_t
)
ice_store_hash = _fn("ice_store_hash", c_void_p, c_char_p, c_size_t)
# Addresses handed to ice_run_opts_t as they are.
STORE_COMMIT = ctypes.cast(lib.ice_store_commit, c_void_p).value
STORE_CACHE_GET = ctypes.cast(lib.ice_store_cache_get, c_void_p).value
STORE_CACHE_PUT = ctypes.cast(lib.ice_store_cache_put, c_void_p).value

ice_json_format = _fn("ice_json_format", c_void_p, c_void_p, c_int)

# libuv, through libice's handle.
uv_backend_fd = _fn("uv_backend_fd", c_int, c_void_p)
uv_backend_timeout = _fn("uv_backend_timeout", c_int, c_void_p)
uv_loop_alive = _fn("uv_loop_alive", c_int, c_void_p)
uv_run = _fn("uv_run", c_int, c_void_p, c_int)

# jansson, through libice's handle. json_decref is a macro in jansson.h:
# decref() below does what it does, on the public head of json_t.
json_loadb = _fn("json_loadb", c_void_p, c_char_p, c_size_t, c_size_t, c_void_p)
json_delete = _fn("json_delete", None, c_void_p)


def decref(ptr):
    """json_decref(): drops one reference to a json_t."""
    if not ptr:
        return
    head = JsonHead.from_address(ptr)
    if head.refcount == ctypes.c_size_t(-1).value:
        return  # a static value (true, false, null)
    head.refcount -= 1
    if head.refcount == 0:
        json_delete(ptr)


def take_string(ptr):
    """A malloc'd char * as str, freed."""
    if not ptr:
        raise MemoryError("ice: out of memory")
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        libc.free(ptr)


def strerror(rc):
    return ice_strerror(rc).decode()

ice_task_engine = _fn("ice_task_engine", c_void_p, c_void_p)
uv_now = _fn("uv_now", ctypes.c_uint64, c_void_p)
uv_hrtime = _fn("uv_hrtime", ctypes.c_uint64)
