/* WASM tools (SPEC §5.1) on wabt's interpreter, behind a C interface. A
 * module is read, validated and checked against the tool ABI once
 * (ice__wasm_load); each call then runs on a fresh instance of it
 * (ice__wasm_call), with fuel, a memory cap and a stop flag. This file
 * knows nothing about nodes, tasks or the event loop: wiring a `wasm` tool
 * or a `code` node to it, turning the output bytes into JSON and log lines
 * into events are the caller's. The implementation is src/wasm.cc, the
 * library's only C++ file; no C++ exception crosses this interface. See
 * docs/wasm.md. */
#ifndef ICE_WASM_H
#define ICE_WASM_H

#include <stddef.h>
#include <stdint.h>

/* The stop flag is a C11 atomic_int. C++ before C++23 has no
 * <stdatomic.h>, so wasm.cc sees the same object as std::atomic<int>,
 * which GCC and Clang lay out and access exactly as _Atomic int (C++23's
 * <stdatomic.h> makes the two the same type). */
#ifdef __cplusplus
#include <atomic>
typedef std::atomic<int> ice__wasm_flag_t;
#else
#include <stdatomic.h>
typedef atomic_int ice__wasm_flag_t;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* SPEC §5.1 defaults, for the caller's tool definitions. */
#define ICE__WASM_DEFAULT_EXPORT "run"
#define ICE__WASM_DEFAULT_FUEL UINT64_C(100000000)
#define ICE__WASM_DEFAULT_PAGES 256u /* 64 KiB pages: 16 MiB */
/* Largest memory_pages: the whole 32-bit address space. */
#define ICE__WASM_MAX_PAGES 65536u

/* Engine limits on what one call may make the interpreter allocate
 * outside the module's linear memory (docs/wasm.md, "Limits"). A module
 * over the first two is refused at load. */
#define ICE__WASM_MAX_LOCALS 4096u      /* declared per function */
#define ICE__WASM_MAX_TABLE (1u << 20)  /* elements per table */
#define ICE__WASM_MAX_VALUES (1u << 20) /* interpreter value stack */

typedef struct ice__wasm_mod_s ice__wasm_mod_t;

/* Reads the module at path, a binary module or, when the file does not
 * start with the WASM magic and its name does not end in ".wasm", a text
 * (.wat) module, and validates it (WASM 2.0 plus wabt's default features:
 * no threads, memory64, exceptions or tail calls). Then checks the tool
 * ABI: the module exports a memory named `memory`, a function `ice_alloc`
 * of type (i32) -> i32 and a function named export_name (NULL: "run") of
 * type (i32, i32) -> i64; its only import, if any, is the function
 * env.ice_log of type (i32, i32) -> (). memory_pages (at most
 * ICE__WASM_MAX_PAGES) caps its memory: a module whose declared minimum is
 * above it is refused, and memory.grow past it returns -1 in every call.
 *
 * Returns 0 with *out set, or, with *out NULL and a message in msg (which
 * does not name the file: the caller prefixes it): ICE_ENOENT / ICE_EIO
 * when the file cannot be read, ICE_EINVAL when it is not a valid module
 * or does not follow the ABI (a text module's message starts with
 * "line L, column C: "), ICE_ENOMEM. The module is immutable once loaded;
 * free it with ice__wasm_free. Safe on any thread. */
int ice__wasm_load(const char *path, const char *export_name,
                   uint32_t memory_pages, ice__wasm_mod_t **out, char *msg,
                   size_t msglen);

/* NULL is allowed. No call may still be running on m. */
void ice__wasm_free(ice__wasm_mod_t *m);

/* The name of the export that ice__wasm_call runs (borrowed, lives as
 * long as m). */
const char *ice__wasm_export(const ice__wasm_mod_t *m);

/* Called for each env.ice_log(ptr, len) with those bytes (not
 * NUL-terminated, not checked for UTF-8), on the thread running the
 * call, before the module continues. */
typedef void (*ice__wasm_log_fn)(void *data, const char *line, size_t len);

/* Runs one call on a fresh instance of m: runs the module's start
 * function if it has one, calls ice_alloc(len), writes the len bytes of
 * args there, calls the export with (ptr, len), and copies out the range
 * its i64 result names: offset result >> 32 (unsigned), length
 * result & 0xffffffff. The output is returned as is, in *out (malloc'd,
 * NUL-terminated, *out_len bytes before the NUL; free with ice__free):
 * checking that it is JSON is the caller's, with the parser it uses for
 * every tool's output.
 *
 * fuel bounds the interpreter instructions executed by the whole call
 * (start, ice_alloc and the export). log may be NULL. stop may be NULL;
 * when another thread sets *stop to non-zero, the call returns within
 * about a millisecond.
 *
 * Returns 0, or with *out NULL and a message in msg, one of the kinds of
 * internal.h:
 *   ICE__KIND_RESOURCE_LIMIT  fuel ran out ("fuel: ... instructions ...");
 *   ICE__KIND_TOOL_ERROR      a trap, with wabt's message ("unreachable
 *                             executed", "integer divide by zero", "out of
 *                             bounds memory access: ...", "call stack
 *                             exhausted", "value stack exhausted"), or an
 *                             args or output range outside memory;
 *   ICE__KIND_CANCELLED       *stop was set;
 *   ICE__KIND_INTERNAL        out of memory, or an unexpected failure.
 *
 * Thread-safe: calls on the same module may run at once on different
 * threads (each has its own store); nothing global is written. */
int ice__wasm_call(const ice__wasm_mod_t *m, const char *args, size_t len,
                   uint64_t fuel, ice__wasm_log_fn log, void *data,
                   const ice__wasm_flag_t *stop, char **out, size_t *out_len,
                   char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif

#endif
