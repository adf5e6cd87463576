/* Tests of the WASM runtime (src/wasm.h, SPEC §5.1) with the .wat fixtures
 * of tests/wasm/ and small modules written here into a temporary
 * directory: the ABI, env.ice_log, fuel, the memory cap, traps, the stop
 * flag, load-time validation, and calls from several threads at once.
 * With ICE_WASM_BENCH=1 in the environment, test_bench prints the figures
 * of docs/wasm.md. */
#include "helpers.h"

#include "internal.h"
#include "wasm.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIX(name) ICE_SOURCE_DIR "/tests/wasm/" name

static char tmpdir[64];

/* The ABI part every small module below shares. */
#define ABI                                                                    \
  "(memory (export \"memory\") 1)\n"                                           \
  "(func (export \"ice_alloc\") (param i32) (result i32) (i32.const 1024))\n"

static int group_setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/ice-test-wasm-XXXXXX");
  return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state) {
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Writes len bytes to tmpdir/name; returns the path (static buffer). */
static const char *tmp_bytes(const char *name, const char *data, size_t len) {
  static char path[256];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

static const char *tmp_text(const char *name, const char *text) {
  return tmp_bytes(name, text, strlen(text));
}

static ice__wasm_mod_t *load_ok(const char *path, const char *export_name,
                                uint32_t pages) {
  ice__wasm_mod_t *m = NULL;
  char msg[512] = "";
  int rc = ice__wasm_load(path, export_name, pages, &m, msg, sizeof(msg));

  if (rc != 0)
    fail_msg("%s: %s", path, msg);
  assert_non_null(m);
  return m;
}

/* Asserts that loading fails with err and a message containing want. */
static void load_fails(const char *path, const char *export_name,
                       uint32_t pages, int err, const char *want) {
  ice__wasm_mod_t *m = (ice__wasm_mod_t *)1;
  char msg[512] = "";
  int rc = ice__wasm_load(path, export_name, pages, &m, msg, sizeof(msg));

  assert_null(m);
  if (rc != err || strstr(msg, want) == NULL)
    fail_msg("%s: got %d '%s', want %d '%s'", path, rc, msg, err, want);
}

static void module_fails(const char *wat, int err, const char *want) {
  load_fails(tmp_text("m.wat", wat), NULL, ICE__WASM_DEFAULT_PAGES, err, want);
}

typedef struct {
  int n;
  char lines[4][64];
} logs_t;

static void on_log(void *data, const char *line, size_t len) {
  logs_t *l = data;

  if (l->n < 4)
    snprintf(l->lines[l->n], sizeof(l->lines[0]), "%.*s", (int)len, line);
  l->n++;
}

/* A call; on success *out holds the output (caller frees). */
static int call_full(const ice__wasm_mod_t *m, const char *args, size_t len,
                     uint64_t fuel, logs_t *logs, const ice__wasm_flag_t *stop,
                     char **out, size_t *out_len, char *msg) {
  int rc = ice__wasm_call(m, args, len, fuel, logs != NULL ? on_log : NULL,
                          logs, stop, out, out_len, msg, 512);

  if (rc != 0) {
    assert_null(*out);
    assert_int_equal(*out_len, 0);
  }
  return rc;
}

/* Asserts that a call with args succeeds with output want. */
static void call_gives(const ice__wasm_mod_t *m, const char *args,
                       const char *want) {
  char *out = NULL, msg[512] = "";
  size_t out_len = 0;
  int rc = call_full(m, args, strlen(args), ICE__WASM_DEFAULT_FUEL, NULL, NULL,
                     &out, &out_len, msg);

  if (rc != 0)
    fail_msg("call failed: %s: %s", ice__kind_name(rc), msg);
  assert_int_equal(out_len, strlen(want));
  assert_memory_equal(out, want, out_len);
  assert_int_equal(out[out_len], '\0');
  ice__free(out);
}

/* Asserts that a call fails with kind and a message containing want. */
static void call_fails(const ice__wasm_mod_t *m, uint64_t fuel, int kind,
                       const char *want) {
  char *out = NULL, msg[512] = "";
  size_t out_len = 0;
  int rc = call_full(m, "{}", 2, fuel, NULL, NULL, &out, &out_len, msg);

  if (rc != kind || strstr(msg, want) == NULL)
    fail_msg("got %s '%s', want %s '%s'", ice__kind_name(rc), msg,
             ice__kind_name(kind), want);
}

/* Runs export_name of misc.wat and expects kind with want. */
static void misc_fails(const char *export_name, int kind, const char *want) {
  ice__wasm_mod_t *m = load_ok(FIX("misc.wat"), export_name, 256);

  call_fails(m, ICE__WASM_DEFAULT_FUEL, kind, want);
  ice__wasm_free(m);
}

/* ---- The ABI ------------------------------------------------------------ */

static void test_echo(void **state) {
  ice__wasm_mod_t *m = load_ok(FIX("echo.wat"), NULL, 256);
  const char *args = "{\"a\":[1,2,3],\"s\":\"h\\u00e9llo\",\"n\":null}";
  size_t big_len = 300 * 1024;
  char *big = malloc(big_len + 1);

  (void)state;
  assert_string_equal(ice__wasm_export(m), "run");
  call_gives(m, args, args);
  call_gives(m, args, args); /* a fresh instance each time */
  call_gives(m, "", "");
  /* Bigger than the first page: ice_alloc grows memory. */
  assert_non_null(big);
  memset(big, ' ', big_len);
  big[0] = '[';
  big[big_len - 1] = ']';
  big[big_len] = '\0';
  call_gives(m, big, big);
  free(big);
  ice__wasm_free(m);
  ice__wasm_free(NULL);
}

/* The binary form of the same module, made by wat2wasm. */
static void test_echo_binary(void **state) {
  char cmd[512], path[256];
  ice__wasm_mod_t *m;

  (void)state;
  snprintf(path, sizeof(path), "%s/echo.wasm", tmpdir);
  snprintf(cmd, sizeof(cmd), "wat2wasm '%s' -o '%s'", FIX("echo.wat"), path);
  assert_int_equal(system(cmd), 0);
  m = load_ok(path, "run", 256);
  call_gives(m, "{\"x\":1}", "{\"x\":1}");
  ice__wasm_free(m);
  /* Binary by its magic, whatever its name. */
  snprintf(cmd, sizeof(cmd), "cp '%s/echo.wasm' '%s/echo.bin'", tmpdir, tmpdir);
  assert_int_equal(system(cmd), 0);
  snprintf(path, sizeof(path), "%s/echo.bin", tmpdir);
  m = load_ok(path, "run", 256);
  call_gives(m, "[]", "[]");
  ice__wasm_free(m);
}

static void test_log(void **state) {
  ice__wasm_mod_t *m = load_ok(FIX("log.wat"), NULL, 256);
  logs_t logs = {0};
  char *out = NULL, msg[512];
  size_t out_len = 0;

  (void)state;
  assert_int_equal(
      call_full(m, "{\"k\":1}", 7, 1000000, &logs, NULL, &out, &out_len, msg),
      0);
  assert_string_equal(out, "{\"logged\":2}");
  assert_int_equal(logs.n, 2);
  assert_string_equal(logs.lines[0], "hello from wasm");
  assert_string_equal(logs.lines[1], "{\"k\":1}");
  ice__free(out);
  /* No log callback: the lines go nowhere. */
  call_gives(m, "{}", "{\"logged\":2}");
  ice__wasm_free(m);
}

static void test_start_function(void **state) {
  ice__wasm_mod_t *m = load_ok(FIX("start.wat"), NULL, 256);

  (void)state;
  call_gives(m, "{}", "{\"started\":true} ");
  ice__wasm_free(m);
  /* A start function runs under the call's fuel. */
  m = load_ok(tmp_text("spin_start.wat",
                       "(module " ABI "(func $s (loop $l (br $l))) (start $s)"
                       "(func (export \"run\") (param i32 i32) (result i64) "
                       "(i64.const 0)))"),
              NULL, 256);
  call_fails(m, 100000, ICE__KIND_RESOURCE_LIMIT, "fuel");
  ice__wasm_free(m);
}

/* Output that is not JSON is returned as it is: the caller parses every
 * tool's output with one parser (docs/wasm.md). */
static void test_output(void **state) {
  ice__wasm_mod_t *m;

  (void)state;
  m = load_ok(FIX("misc.wat"), "not_json", 256);
  call_gives(m, "{}", "not json {");
  ice__wasm_free(m);
  m = load_ok(FIX("misc.wat"), "empty_output", 256);
  call_gives(m, "{}", "");
  ice__wasm_free(m);
  misc_fails("oob_output", ICE__KIND_TOOL_ERROR,
             "output range [65000, 66000) is outside memory (65536 bytes)");
  /* result >> 32 is unsigned: 0xffffffff, not -1. */
  misc_fails("huge_output", ICE__KIND_TOOL_ERROR,
             "[4294967295, 8589934590) is outside memory");
}

static void test_bad_alloc(void **state) {
  ice__wasm_mod_t *m;

  (void)state;
  m = load_ok(tmp_text("alloc.wat",
                       "(module (memory (export \"memory\") 1)"
                       "(func (export \"ice_alloc\") (param i32) (result i32)"
                       " (i32.const 65535))"
                       "(func (export \"run\") (param i32 i32) (result i64) "
                       "(i64.const 0)))"),
              NULL, 256);
  call_fails(m, 1000, ICE__KIND_TOOL_ERROR,
             "ice_alloc(2) returned 65535, outside memory (65536 bytes)");
  /* Nothing to write: any pointer up to the end of memory will do. */
  call_gives(m, "", "");
  ice__wasm_free(m);
  /* ice_alloc that cannot grow memory past the cap. */
  m = load_ok(FIX("echo.wat"), NULL, 1);
  {
    char args[70000];
    char *out = NULL, msg[512];
    size_t out_len = 0;
    memset(args, ' ', sizeof(args));
    assert_int_equal(call_full(m, args, sizeof(args), 100000, NULL, NULL, &out,
                               &out_len, msg),
                     ICE__KIND_TOOL_ERROR);
    assert_non_null(strstr(msg, "ice_alloc(70000) returned 1024, outside "
                                "memory (65536 bytes)"));
  }
  ice__wasm_free(m);
}

/* ---- Fuel, memory, traps, stop --------------------------------------- */

static void test_fuel(void **state) {
  ice__wasm_mod_t *m = load_ok(FIX("misc.wat"), "spin", 256);
  double t0 = now_ms();

  (void)state;
  call_fails(m, 1000000, ICE__KIND_RESOURCE_LIMIT,
             "out of fuel (1000000 instructions)");
  assert_true(now_ms() - t0 < 2000);
  call_fails(m, 0, ICE__KIND_RESOURCE_LIMIT, "fuel");
  ice__wasm_free(m);

  /* count runs about 7,000 instructions. */
  m = load_ok(FIX("misc.wat"), "count", 256);
  call_gives(m, "{}", "");
  call_fails(m, 5000, ICE__KIND_RESOURCE_LIMIT, "fuel");
  {
    char *out = NULL, msg[512];
    size_t out_len = 0;
    assert_int_equal(
        call_full(m, "{}", 2, 10000, NULL, NULL, &out, &out_len, msg), 0);
    ice__free(out);
  }
  ice__wasm_free(m);
}

static void test_memory_cap(void **state) {
  ice__wasm_mod_t *m;

  (void)state;
  /* From 1 page: grow(255) reaches the cap of 256, grow(1) fails. */
  m = load_ok(FIX("grow.wat"), NULL, 256);
  call_gives(m, "{}", "{\"a\":1,\"b\":-1}");
  ice__wasm_free(m);
  m = load_ok(FIX("grow.wat"), NULL, 1000);
  call_gives(m, "{}", "{\"a\":1,\"b\":256}");
  ice__wasm_free(m);
  m = load_ok(FIX("grow.wat"), NULL, 100);
  call_gives(m, "{}", "{\"a\":-1,\"b\":1}");
  ice__wasm_free(m);

  /* The module's own maximum still holds under a higher cap. */
  m = load_ok(tmp_text("max.wat",
                       "(module (memory (export \"memory\") 1 2)"
                       "(func (export \"ice_alloc\") (param i32) (result i32)"
                       " (i32.const 0))"
                       "(func (export \"run\") (param i32 i32) (result i64)"
                       " (i64.extend_i32_s (memory.grow (i32.const 2)))"
                       " unreachable))"),
              NULL, 256);
  call_fails(m, 1000, ICE__KIND_TOOL_ERROR, "unreachable executed");
  ice__wasm_free(m);

  /* A minimum above the cap is refused at load. */
  const char *big = tmp_text("min.wat", "(module (memory (export \"memory\") "
                                        "300)"
                                        "(func (export \"ice_alloc\") (param "
                                        "i32) (result i32) (i32.const 0))"
                                        "(func (export \"run\") (param i32 "
                                        "i32) (result i64) (i64.const 0)))");
  load_fails(big, NULL, 256, ICE_EINVAL,
             "the memory's minimum is 300 pages, above memory_pages (256)");
  m = load_ok(big, NULL, 300);
  call_gives(m, "{}", "");
  ice__wasm_free(m);
  load_fails(big, NULL, 65537, ICE_EINVAL,
             "memory_pages is 65537; at most 65536 are allowed");
}

static void test_traps(void **state) {
  (void)state;
  misc_fails("unreachable", ICE__KIND_TOOL_ERROR, "unreachable executed");
  misc_fails("div0", ICE__KIND_TOOL_ERROR, "integer divide by zero");
  misc_fails("oob_load", ICE__KIND_TOOL_ERROR, "out of bounds memory access");
  misc_fails("recurse", ICE__KIND_TOOL_ERROR, "call stack exhausted");
  misc_fails("bad_log", ICE__KIND_TOOL_ERROR,
             "ice_log: bytes [65000, 66000) are outside memory (65536 "
             "bytes)");
}

/* A recursive function with 2,000 locals: frames fill the value stack
 * long before the call stack. */
static void test_value_stack(void **state) {
  size_t n = 0, cap = 40000;
  char *wat = malloc(cap);
  ice__wasm_mod_t *m;

  (void)state;
  assert_non_null(wat);
  n += snprintf(wat + n, cap - n,
                "(module " ABI "(func $deep (export \"run\") "
                "(param i32 i32) (result i64) (local");
  for (int i = 0; i < 2000; i++)
    n += snprintf(wat + n, cap - n, " i64");
  snprintf(wat + n, cap - n, ") (call $deep (local.get 0) (local.get 1))))");
  m = load_ok(tmp_text("deep.wat", wat), NULL, 256);
  call_fails(m, ICE__WASM_DEFAULT_FUEL, ICE__KIND_TOOL_ERROR,
             "value stack exhausted");
  ice__wasm_free(m);
  free(wat);
}

typedef struct {
  ice__wasm_flag_t *stop;
  int delay_ms;
} stopper_t;

static void *stopper(void *arg) {
  stopper_t *s = arg;

  usleep(s->delay_ms * 1000);
  atomic_store(s->stop, 1);
  return NULL;
}

static void test_stop(void **state) {
  ice__wasm_mod_t *m = load_ok(FIX("misc.wat"), "spin", 256);
  ice__wasm_flag_t stop = 1;
  char *out = NULL, msg[512];
  size_t out_len = 0;
  pthread_t th;
  stopper_t s = {&stop, 50};
  double t0;

  (void)state;
  /* Already set: nothing runs. */
  assert_int_equal(
      call_full(m, "{}", 2, UINT64_MAX, NULL, &stop, &out, &out_len, msg),
      ICE__KIND_CANCELLED);
  /* Set by another thread during an endless loop. */
  atomic_store(&stop, 0);
  t0 = now_ms();
  assert_int_equal(pthread_create(&th, NULL, stopper, &s), 0);
  assert_int_equal(
      call_full(m, "{}", 2, UINT64_MAX, NULL, &stop, &out, &out_len, msg),
      ICE__KIND_CANCELLED);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_true(now_ms() - t0 >= 50);
  assert_true(now_ms() - t0 < 1000);
  assert_string_equal(msg, "cancelled");
  ice__wasm_free(m);
}

/* One module, eight threads calling it at once. */
typedef struct {
  const ice__wasm_mod_t *m;
  int ok;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  char args[64], *out, msg[512];
  size_t out_len;

  for (int i = 0; i < 200; i++) {
    int n = snprintf(args, sizeof(args), "{\"i\":%d}", i);
    if (ice__wasm_call(w->m, args, n, 100000, NULL, NULL, NULL, &out, &out_len,
                       msg, sizeof(msg)) != 0)
      return NULL;
    w->ok += out_len == (size_t)n && memcmp(out, args, n) == 0;
    ice__free(out);
  }
  return NULL;
}

static void test_threads(void **state) {
  ice__wasm_mod_t *m = load_ok(FIX("echo.wat"), NULL, 256);
  pthread_t th[8];
  worker_t w[8];

  (void)state;
  for (int i = 0; i < 8; i++) {
    w[i] = (worker_t){m, 0};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(w[i].ok, 200);
  }
  ice__wasm_free(m);
}

/* ---- Load-time validation --------------------------------------------- */

static void test_imports(void **state) {
  (void)state;
  module_fails("(module (import \"env\" \"open\" (func (param i32 i32) "
               "(result i32))) " ABI ")",
               ICE_EINVAL,
               "import 'env.open' is not allowed (only env.ice_log)");
  module_fails("(module (import \"wasi_snapshot_preview1\" \"fd_write\" "
               "(func (param i32 i32 i32 i32) (result i32))) " ABI ")",
               ICE_EINVAL,
               "import 'wasi_snapshot_preview1.fd_write' is not allowed");
  module_fails("(module (import \"env\" \"ice_log\" (func (param i32))) " ABI
               ")",
               ICE_EINVAL,
               "import 'env.ice_log' must be (i32, i32) -> (), not (i32) -> "
               "()");
  module_fails("(module (import \"env\" \"ice_log\" (global i32)) " ABI ")",
               ICE_EINVAL, "import 'env.ice_log' must be a function");
  module_fails("(module (import \"env\" \"memory\" (memory 1)) "
               "(export \"memory\" (memory 0)))",
               ICE_EINVAL, "import 'env.memory' is not allowed");
}

static void test_abi(void **state) {
  ice__wasm_mod_t *m;

  (void)state;
  module_fails("(module (func (export \"ice_alloc\") (param i32) (result i32)"
               " (i32.const 0)))",
               ICE_EINVAL, "export 'memory' not found");
  module_fails("(module (memory (export \"mem\") 1))", ICE_EINVAL,
               "export 'memory' not found");
  module_fails("(module (func (export \"memory\")))", ICE_EINVAL,
               "export 'memory' must be a memory");
  module_fails("(module (memory (export \"memory\") 1))", ICE_EINVAL,
               "export 'ice_alloc' not found");
  module_fails("(module (memory (export \"memory\") 1) (func (export "
               "\"ice_alloc\") (param i64) (result i32) (i32.const 0)))",
               ICE_EINVAL,
               "'ice_alloc' must be (i32) -> i32, not (i64) -> i32");
  module_fails("(module " ABI ")", ICE_EINVAL, "export 'run' not found");
  module_fails("(module " ABI "(func (export \"run\") (param i32 i32) "
               "(result i32) (i32.const 0)))",
               ICE_EINVAL,
               "'run' must be (i32, i32) -> i64, not (i32, i32) -> "
               "i32");
  module_fails("(module " ABI "(func (export \"run\") (param i32 i32)))",
               ICE_EINVAL, "not (i32, i32) -> ()");
  module_fails("(module " ABI "(func (export \"run\") (param i32 i32) (result "
               "i64 i64) (i64.const 0) (i64.const 0)))",
               ICE_EINVAL, "not (i32, i32) -> (i64, i64)");
  module_fails("(module " ABI "(memory 1) (export \"run\" (memory 0)))",
               ICE_EINVAL, "");
  module_fails("(module " ABI "(global (export \"run\") i32 (i32.const 0)))",
               ICE_EINVAL, "export 'run' must be a function");
  /* The export is the tool's choice. */
  m = load_ok(FIX("echo.wat"), "run", 256);
  ice__wasm_free(m);
  load_fails(FIX("echo.wat"), "main", 256, ICE_EINVAL,
             "export 'main' not found");
  m = load_ok(tmp_text("main.wat",
                       "(module " ABI "(func (export \"main\") (param i32 i32)"
                       " (result i64) (i64.const 0)))"),
              "main", 256);
  assert_string_equal(ice__wasm_export(m), "main");
  call_gives(m, "{}", "");
  ice__wasm_free(m);
}

static void test_malformed(void **state) {
  static const char trunc[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1, 7, 1, 0x60};
  static const char version[] = {0, 'a', 's', 'm', 2, 0, 0, 0};
  char path[256];

  (void)state;
  load_fails(tmp_text("junk.wasm", "hello, world"), NULL, 256, ICE_EINVAL,
             "at byte 4: bad magic value");
  load_fails(tmp_bytes("trunc.wasm", trunc, sizeof(trunc)), NULL, 256,
             ICE_EINVAL, "at byte ");
  load_fails(tmp_bytes("version.wasm", version, sizeof(version)), NULL, 256,
             ICE_EINVAL, "bad wasm file version");
  load_fails(tmp_bytes("empty.wasm", "", 0), NULL, 256, ICE_EINVAL,
             "at byte 0: ");
  /* Text: a syntax error and a type error, with their positions. */
  load_fails(tmp_text("syntax.wat", "(module\n  (func (export \"run\")\n"
                                    "    (i32.bogus)))"),
             NULL, 256, ICE_EINVAL, "line 3, column 6: ");
  load_fails(tmp_text("type.wat", "(module\n  (func (result i32)\n"
                                  "    (i64.const 1)))"),
             NULL, 256, ICE_EINVAL, "line 3, column 6: type mismatch");
  load_fails(tmp_text("empty.wat", ""), NULL, 256, ICE_EINVAL,
             "line 1, column 1: unexpected token \"EOF\"");
  snprintf(path, sizeof(path), "%s/missing.wasm", tmpdir);
  load_fails(path, NULL, 256, ICE_ENOENT, "No such file or directory");
  load_fails(tmpdir, NULL, 256, ICE_EIO, "");
}

/* Engine limits and what fails every instantiation. */
static void test_limits(void **state) {
  size_t n = 0, cap = 40000;
  char *wat = malloc(cap);

  (void)state;
  assert_non_null(wat);
  n += snprintf(wat + n, cap - n, "(module " ABI "(func $f (local");
  for (int i = 0; i < 4097; i++)
    n += snprintf(wat + n, cap - n, " i32");
  snprintf(wat + n, cap - n,
           "))(func (export \"run\") (param i32 i32) "
           "(result i64) (i64.const 0)))");
  module_fails(wat, ICE_EINVAL,
               "function 1 has 4097 locals; at most 4096 are allowed");
  free(wat);
  module_fails("(module " ABI "(table 2000000 funcref)"
               "(func (export \"run\") (param i32 i32) (result i64) "
               "(i64.const 0)))",
               ICE_EINVAL,
               "a table's minimum is 2000000 elements; at most 1048576");
  /* Tables within the limit load; table.grow past it returns -1. */
  ice__wasm_mod_t *m = load_ok(
      tmp_text("tables.wat", "(module " ABI "(table 4 funcref)"
                             "(table 1 8 externref)"
                             "(func (export \"run\") (param i32 i32) "
                             "(result i64)"
                             " (if (i32.ne (table.grow 0 (ref.null func)"
                             "  (i32.const 10)) (i32.const 4))"
                             "  (then unreachable))"
                             " (if (i32.ne (table.grow 0 (ref.null func)"
                             "  (i32.const 2000000)) (i32.const -1))"
                             "  (then unreachable))"
                             " (i64.const 0)))"),
      NULL, 256);
  call_gives(m, "{}", "");
  ice__wasm_free(m);
  module_fails("(module " ABI "(data (i32.const 65530) \"0123456789\")"
               "(func (export \"run\") (param i32 i32) (result i64) "
               "(i64.const 0)))",
               ICE_EINVAL,
               "instantiation fails: out of bounds memory access: data "
               "segment is out of bounds");
}

/* ---- Figures for docs/wasm.md (ICE_WASM_BENCH=1) ---------------------- */

static void test_bench(void **state) {
  ice__wasm_mod_t *m;
  const char *args = "{\"text\":\"hello\",\"n\":42}";
  char *out, msg[512];
  size_t out_len;
  int loads = 2000, calls = 20000;
  double t0, ms;

  (void)state;
  if (getenv("ICE_WASM_BENCH") == NULL)
    skip();
  t0 = now_ms();
  for (int i = 0; i < loads; i++) {
    m = load_ok(FIX("echo.wat"), NULL, 256);
    ice__wasm_free(m);
  }
  ms = now_ms() - t0;
  printf("load+validate echo.wat: %.1f us\n", ms * 1e3 / loads);
  m = load_ok(FIX("misc.wat"), "spin", 256);
  t0 = now_ms();
  for (int i = 0; i < loads; i++) {
    ice__wasm_free(m);
    m = load_ok(FIX("misc.wat"), "spin", 256);
  }
  ms = now_ms() - t0;
  printf("load+validate misc.wat: %.1f us\n", ms * 1e3 / loads);

  t0 = now_ms();
  assert_int_equal(ice__wasm_call(m, "{}", 2, 100000000, NULL, NULL, NULL, &out,
                                  &out_len, msg, sizeof(msg)),
                   ICE__KIND_RESOURCE_LIMIT);
  ms = now_ms() - t0;
  printf("fuel-metered loop: %.0f M instructions/s\n", 100.0 / (ms / 1e3));
  ice__wasm_free(m);

  m = load_ok(FIX("echo.wat"), NULL, 256);
  t0 = now_ms();
  for (int i = 0; i < calls; i++) {
    assert_int_equal(ice__wasm_call(m, args, strlen(args), 100000000, NULL,
                                    NULL, NULL, &out, &out_len, msg,
                                    sizeof(msg)),
                     0);
    ice__free(out);
  }
  ms = now_ms() - t0;
  printf("echo call: %.1f us, %.0f calls/s\n", ms * 1e3 / calls,
         calls / (ms / 1e3));
  ice__wasm_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_echo),      cmocka_unit_test(test_echo_binary),
      cmocka_unit_test(test_log),       cmocka_unit_test(test_start_function),
      cmocka_unit_test(test_output),    cmocka_unit_test(test_bad_alloc),
      cmocka_unit_test(test_fuel),      cmocka_unit_test(test_memory_cap),
      cmocka_unit_test(test_traps),     cmocka_unit_test(test_value_stack),
      cmocka_unit_test(test_stop),      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_imports),   cmocka_unit_test(test_abi),
      cmocka_unit_test(test_malformed), cmocka_unit_test(test_limits),
      cmocka_unit_test(test_bench),
  };

  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
