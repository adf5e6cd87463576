/* WASM tools (wasm.h, SPEC §5.1) on wabt 1.0.32's interpreter. Loading
 * reads, validates and ABI-checks a module once; each call instantiates it
 * in a store of its own and runs it in slices of instructions, so that fuel,
 * the stop flag and the value stack are checked between slices. The only
 * C++ in the library: every exception is caught here and becomes an error,
 * and nothing is printed. docs/wasm.md describes the design and its figures.
 */
#include "wasm.h"

extern "C" {
#include "internal.h"
#include "readfile.h"
}
#include <ice.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "wabt/binary-reader.h"
#include "wabt/binary-writer.h"
#include "wabt/config.h"
#include "wabt/error.h"
#include "wabt/feature.h"
#include "wabt/interp/binary-reader-interp.h"
#include "wabt/interp/interp.h"
#include "wabt/ir.h"
#include "wabt/stream.h"
#include "wabt/validator.h"
#include "wabt/wast-lexer.h"
#include "wabt/wast-parser.h"

namespace wi = wabt::interp;
using wabt::Type;

#ifdef ICE_BUILDING_SHARED
/* libice.so links a copy of libwabt.a (not PIC) whose references to stdin,
 * stdout and stderr are renamed to these (CMakeLists.txt): a shared object
 * cannot reach libc's own through the 32-bit relocations wabt uses. They
 * are set when the library is loaded. What wabt prints there is for its
 * command-line tools (file streams, stdin) or comes just before an abort
 * on a broken invariant of its own; none of it is on the paths used here,
 * and the static library's wabt would print the same. */
extern "C" {
__attribute__((visibility("hidden"))) FILE *ice__wabt_stdin = stdin;
__attribute__((visibility("hidden"))) FILE *ice__wabt_stdout = stdout;
__attribute__((visibility("hidden"))) FILE *ice__wabt_stderr = stderr;
}
#endif

/* ---- Running in slices ------------------------------------------------- */

/* wabt runs a function to its end (Func::Call) and has no fuel. Its
 * Thread::Run(n) does run n instructions and stop, but a call can only be
 * set up on a thread by private members (PushValues, PushCall, PopValues),
 * which Func::Call uses. An explicit instantiation may name private members
 * ([temp.explicit]: access is not checked there); the friend function it
 * defines hands the member pointer out. The signatures are checked by the
 * compiler against the installed headers, and the version below pins the
 * behaviour this file relies on (read in 1.0.32's interp.cc): PushCall
 * pushes a frame without running it; Run(n) returns Ok after exactly n
 * instructions, Return when the outermost frame returns, Trap on a trap. */
static_assert(std::string_view(WABT_VERSION_STRING) == "1.0.32",
              "wasm.cc relies on wabt 1.0.32's Thread internals: recheck");

namespace {

template <typename Tag, typename Tag::type M> struct Expose {
  friend typename Tag::type member(Tag) {
    return M;
  }
};

struct PushValuesTag {
  using type = void (wi::Thread::*)(const wi::ValueTypes &, const wi::Values &);
  friend type member(PushValuesTag);
};
struct PushCallTag {
  using type = wi::RunResult (wi::Thread::*)(const wi::DefinedFunc &,
                                             wi::Trap::Ptr *);
  friend type member(PushCallTag);
};
struct PopValuesTag {
  using type = void (wi::Thread::*)(const wi::ValueTypes &, wi::Values *);
  friend type member(PopValuesTag);
};
struct ValuesTag {
  using type = std::vector<wi::Value> wi::Thread::*;
  friend type member(ValuesTag);
};

template struct Expose<PushValuesTag, &wi::Thread::PushValues>;
template struct Expose<PushCallTag, &wi::Thread::PushCall>;
template struct Expose<PopValuesTag, &wi::Thread::PopValues>;
template struct Expose<ValuesTag, &wi::Thread::values_>;

/* Instructions per slice. A slice of 1024 takes some microseconds, so a
 * stop request is seen within about a millisecond even under ASan. Each
 * top-level function starts with short slices that double: fuel is
 * charged per slice, and the last one in full, so short functions
 * (ice_alloc) are not charged much more than they ran. */
constexpr int kFirstSlice = 64;
constexpr int kSlice = 1024;

} // namespace

/* ---- The module -------------------------------------------------------- */

struct ice__wasm_mod_s {
  /* Validated, with the memory and table limits capped and the start
   * function removed (it is run under fuel by the call, not by
   * Instantiate). Copied into each call's store. */
  wi::ModuleDesc desc;
  std::string export_name;
  size_t mem_export;   /* index in desc.exports of `memory` */
  size_t alloc_export; /* ... of `ice_alloc` */
  size_t run_export;   /* ... of the tool's export */
  bool has_start;
  wi::Index start_func;
};

namespace {

/* printf into msg; returns err so that callers can return it. */
int fail(int err, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int fail(int err, char *msg, size_t msglen, const char *fmt, ...) {
  va_list ap;

  if (msglen > 0) {
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return err;
}

std::string type_text(const wi::FuncType &t) {
  std::string s = "(";

  for (size_t i = 0; i < t.params.size(); i++) {
    s += i > 0 ? ", " : "";
    s += t.params[i].GetName();
  }
  s += ") -> ";
  if (t.results.size() != 1)
    s += "(";
  for (size_t i = 0; i < t.results.size(); i++) {
    s += i > 0 ? ", " : "";
    s += t.results[i].GetName();
  }
  if (t.results.size() != 1)
    s += ")";
  return s;
}

bool type_is(const wi::FuncType &t, std::initializer_list<Type> params,
             std::initializer_list<Type> results) {
  return std::equal(t.params.begin(), t.params.end(), params.begin(),
                    params.end()) &&
         std::equal(t.results.begin(), t.results.end(), results.begin(),
                    results.end());
}

/* The first error of a wabt parse, with its position. */
std::string first_error(const wabt::Errors &errors, bool text) {
  char where[64] = "";

  for (const wabt::Error &e : errors) {
    if (e.error_level != wabt::ErrorLevel::Error)
      continue;
    if (text && e.loc.line > 0)
      snprintf(where, sizeof(where), "line %d, column %d: ", e.loc.line,
               e.loc.first_column);
    else if (!text)
      snprintf(where, sizeof(where), "at byte %zu: ", e.loc.offset);
    return where + e.message;
  }
  return "invalid module";
}

/* A text module as binary, through wabt's own wat2wasm steps. */
int wat_to_wasm(const char *text, size_t len, std::vector<uint8_t> *out,
                char *msg, size_t msglen) {
  wabt::Errors errors;
  wabt::Features features;
  wabt::WastParseOptions popts(features);
  std::unique_ptr<wabt::Module> module;
  std::unique_ptr<wabt::WastLexer> lexer =
      wabt::WastLexer::CreateBufferLexer("module.wat", text, len, &errors);
  wabt::Result r = wabt::ParseWatModule(lexer.get(), &module, &errors, &popts);

  if (wabt::Succeeded(r))
    r = wabt::ValidateModule(module.get(), &errors,
                             wabt::ValidateOptions(features));
  if (wabt::Failed(r))
    return fail(ICE_EINVAL, msg, msglen, "%s",
                first_error(errors, true).c_str());
  wabt::MemoryStream stream;
  wabt::WriteBinaryOptions wopts(features, true, false, false);
  if (wabt::Failed(wabt::WriteBinaryModule(&stream, module.get(), wopts)))
    return fail(ICE_EINVAL, msg, msglen, "cannot encode the text module");
  *out = std::move(stream.output_buffer().data);
  return 0;
}

/* Finds the function export `name` of type `want` (described as
 * want_text); 0 with its index, or ICE_EINVAL. */
int find_func(const wi::ModuleDesc &d, const char *name,
              std::initializer_list<Type> params,
              std::initializer_list<Type> results, const char *want_text,
              size_t *index, char *msg, size_t msglen) {
  for (size_t i = 0; i < d.exports.size(); i++) {
    const wi::ExportType &e = d.exports[i].type;
    if (e.name != name)
      continue;
    if (e.type->kind != wabt::ExternalKind::Func)
      return fail(ICE_EINVAL, msg, msglen, "export '%s' must be a function",
                  name);
    const wi::FuncType &t = *wabt::cast<wi::FuncType>(e.type.get());
    if (!type_is(t, params, results))
      return fail(ICE_EINVAL, msg, msglen, "'%s' must be %s, not %s", name,
                  want_text, type_text(t).c_str());
    *index = i;
    return 0;
  }
  return fail(ICE_EINVAL, msg, msglen, "export '%s' not found", name);
}

/* The tool ABI and the engine's limits (wasm.h), on a validated module;
 * caps its memory and tables, and takes its start function out. */
int check_abi(ice__wasm_mod_s *m, uint32_t pages, char *msg, size_t msglen) {
  wi::ModuleDesc &d = m->desc;
  bool found = false;
  int err;

  for (const wi::ImportDesc &imp : d.imports) {
    const wi::ImportType &t = imp.type;
    if (t.module != "env" || t.name != "ice_log")
      return fail(ICE_EINVAL, msg, msglen,
                  "import '%s.%s' is not allowed (only env.ice_log)",
                  t.module.c_str(), t.name.c_str());
    if (t.type->kind != wabt::ExternalKind::Func)
      return fail(ICE_EINVAL, msg, msglen,
                  "import 'env.ice_log' must be a function");
    const wi::FuncType &ft = *wabt::cast<wi::FuncType>(t.type.get());
    if (!type_is(ft, {Type::I32, Type::I32}, {}))
      return fail(ICE_EINVAL, msg, msglen,
                  "import 'env.ice_log' must be (i32, i32) -> (), not %s",
                  type_text(ft).c_str());
  }
  for (size_t i = 0; i < d.exports.size() && !found; i++) {
    const wi::ExportType &e = d.exports[i].type;
    if (e.name != "memory")
      continue;
    if (e.type->kind != wabt::ExternalKind::Memory)
      return fail(ICE_EINVAL, msg, msglen, "export 'memory' must be a memory");
    m->mem_export = i;
    found = true;
  }
  if (!found)
    return fail(ICE_EINVAL, msg, msglen, "export 'memory' not found");
  err = find_func(d, "ice_alloc", {Type::I32}, {Type::I32}, "(i32) -> i32",
                  &m->alloc_export, msg, msglen);
  if (err == 0)
    err = find_func(d, m->export_name.c_str(), {Type::I32, Type::I32},
                    {Type::I64}, "(i32, i32) -> i64", &m->run_export, msg,
                    msglen);
  if (err != 0)
    return err;

  for (size_t i = 0; i < d.funcs.size(); i++) {
    const wi::FuncDesc &f = d.funcs[i];
    uint64_t n = f.locals.empty() ? 0 : f.locals.back().end;
    if (n > ICE__WASM_MAX_LOCALS)
      return fail(ICE_EINVAL, msg, msglen,
                  "function %zu has %" PRIu64 " locals; at most %u are "
                  "allowed",
                  d.imports.size() + i, n, ICE__WASM_MAX_LOCALS);
  }
  /* Instantiate allocates each minimum at once; growth past max fails as
   * WASM says (memory.grow returns -1). */
  for (wi::MemoryDesc &mem : d.memories) {
    wabt::Limits &l = mem.type.limits;
    if (l.initial > pages)
      return fail(ICE_EINVAL, msg, msglen,
                  "the memory's minimum is %" PRIu64 " pages, above "
                  "memory_pages (%u)",
                  l.initial, pages);
    l.max = l.has_max ? std::min<uint64_t>(l.max, pages) : pages;
    l.has_max = true;
  }
  for (wi::TableDesc &tab : d.tables) {
    wabt::Limits &l = tab.type.limits;
    if (l.initial > ICE__WASM_MAX_TABLE)
      return fail(ICE_EINVAL, msg, msglen,
                  "a table's minimum is %" PRIu64 " elements; at most %u "
                  "are allowed",
                  l.initial, ICE__WASM_MAX_TABLE);
    l.max = l.has_max ? std::min<uint64_t>(l.max, ICE__WASM_MAX_TABLE)
                      : ICE__WASM_MAX_TABLE;
    l.has_max = true;
  }
  m->has_start = !d.starts.empty();
  if (m->has_start)
    m->start_func = d.starts[0].func_index;
  d.starts.clear();
  return 0;
}

int load(const char *path, const char *export_name, uint32_t pages,
         ice__wasm_mod_t **out, char *msg, size_t msglen) {
  char *buf = NULL;
  size_t len = 0, plen = strlen(path);
  std::vector<uint8_t> bin;
  const void *data;
  wabt::Errors errors;
  std::unique_ptr<ice__wasm_mod_s> m(new ice__wasm_mod_s());
  int err;

  if (pages > ICE__WASM_MAX_PAGES)
    return fail(ICE_EINVAL, msg, msglen,
                "memory_pages is %u; at most %u are allowed", pages,
                ICE__WASM_MAX_PAGES);
  err = ice__file_read(path, 0, &buf, &len, msg, msglen);
  if (err != 0)
    return err;
  /* Text unless it is binary by its magic or by its name. */
  bool binary = (len >= 4 && memcmp(buf, "\0asm", 4) == 0) ||
                (plen >= 5 && strcmp(path + plen - 5, ".wasm") == 0);
  if (!binary) {
    err = wat_to_wasm(buf, len, &bin, msg, msglen);
    ice__free(buf);
    buf = NULL;
    if (err != 0)
      return err;
  }
  data = binary ? static_cast<const void *>(buf) : bin.data();
  len = binary ? len : bin.size();
  wabt::ReadBinaryOptions ropts;
  wabt::Result r =
      wi::ReadBinaryInterp("module.wasm", data, len, ropts, &errors, &m->desc);
  ice__free(buf);
  if (wabt::Failed(r))
    return fail(ICE_EINVAL, msg, msglen, "%s",
                first_error(errors, false).c_str());
  m->export_name = export_name != NULL ? export_name : "run";
  err = check_abi(m.get(), pages, msg, msglen);
  if (err != 0)
    return err;

  /* A trial instantiation: data or element segments out of bounds fail
   * every call the same way, so they are a load error. Nothing of the
   * module runs (its start function was taken out). */
  {
    wi::Store store;
    wi::Module::Ptr mod = wi::Module::New(store, m->desc);
    wi::RefVec imports;
    wi::Trap::Ptr trap;
    wi::HostFunc::Ptr nop =
        wi::HostFunc::New(store, wi::FuncType({Type::I32, Type::I32}, {}),
                          [](wi::Thread &, const wi::Values &, wi::Values &,
                             wi::Trap::Ptr *) { return wabt::Result::Ok; });
    imports.assign(m->desc.imports.size(), nop.ref());
    wi::Instance::Ptr inst =
        wi::Instance::Instantiate(store, mod.ref(), imports, &trap);
    if (!inst)
      return fail(ICE_EINVAL, msg, msglen, "instantiation fails: %s",
                  trap ? trap->message().c_str() : "unknown error");
  }
  *out = m.release();
  return 0;
}

/* ---- One call ---------------------------------------------------------- */

struct Call {
  uint64_t fuel_given;
  uint64_t fuel; /* left */
  ice__wasm_log_fn log;
  void *data;
  const ice__wasm_flag_t *stop;
  wi::Memory::Ptr mem;
  std::string msg; /* why the call failed */
};

bool in_memory(const wi::Memory &mem, uint64_t ptr, uint64_t len) {
  return ptr <= mem.ByteSize() && len <= mem.ByteSize() - ptr;
}

wabt::Result on_log(Call &c, wi::Thread &t, const wi::Values &params,
                    wi::Trap::Ptr *trap) {
  uint32_t ptr = params[0].Get<uint32_t>();
  uint32_t len = params[1].Get<uint32_t>();
  char why[128];

  if (!in_memory(*c.mem, ptr, len)) {
    snprintf(why, sizeof(why),
             "ice_log: bytes [%" PRIu32 ", %" PRIu64 ") are outside memory "
             "(%" PRIu64 " bytes)",
             ptr, uint64_t{ptr} + len, c.mem->ByteSize());
    *trap = wi::Trap::New(t.store(), why);
    return wabt::Result::Error;
  }
  if (c.log != NULL)
    c.log(c.data, reinterpret_cast<const char *>(c.mem->UnsafeData()) + ptr,
          len);
  return wabt::Result::Ok;
}

/* Runs function fref(params) on t under c's fuel and stop flag: 0 with the
 * results, or a kind with c.msg. */
int run(Call &c, wi::Thread &t, wi::Ref fref, const wi::Values &params,
        wi::Values *results) {
  wi::Store &s = t.store();
  wi::Func::Ptr fn{s, fref};
  wi::DefinedFunc *f = wabt::dyn_cast<wi::DefinedFunc>(fn.get());
  wi::Trap::Ptr trap;
  wi::RunResult r;
  int slice = kFirstSlice;

  if (f == NULL) {
    c.msg = "the function to call is not defined in the module";
    return ICE__KIND_INTERNAL;
  }
  (t.*member(PushValuesTag{}))(f->type().params, params);
  r = (t.*member(PushCallTag{}))(*f, &trap);
  while (r == wi::RunResult::Ok) {
    if (c.stop != NULL && c.stop->load(std::memory_order_relaxed) != 0) {
      c.msg = "cancelled";
      return ICE__KIND_CANCELLED;
    }
    if (c.fuel == 0) {
      char why[96];
      snprintf(why, sizeof(why), "out of fuel (%" PRIu64 " instructions)",
               c.fuel_given);
      c.msg = why;
      return ICE__KIND_RESOURCE_LIMIT;
    }
    int n = static_cast<int>(std::min<uint64_t>(c.fuel, slice));
    r = t.Run(n, &trap);
    c.fuel -= n;
    slice = std::min(slice * 2, kSlice);
    if (r == wi::RunResult::Ok &&
        (t.*member(ValuesTag{})).size() > ICE__WASM_MAX_VALUES) {
      c.msg = "value stack exhausted";
      return ICE__KIND_TOOL_ERROR;
    }
  }
  switch (r) {
  case wi::RunResult::Return:
    (t.*member(PopValuesTag{}))(f->type().results, results);
    return 0;
  case wi::RunResult::Trap:
    c.msg = trap ? trap->message() : "trap";
    return ICE__KIND_TOOL_ERROR;
  default:
    c.msg = "uncaught exception";
    return ICE__KIND_TOOL_ERROR;
  }
}

int call(const ice__wasm_mod_t *m, const char *args, size_t len, uint64_t fuel,
         ice__wasm_log_fn log, void *data, const ice__wasm_flag_t *stop,
         char **out, size_t *out_len, char *msg, size_t msglen) {
  wi::Store store;
  Call c{fuel, fuel, log, data, stop, {}, {}};
  wi::Module::Ptr mod = wi::Module::New(store, m->desc);
  wi::RefVec imports;
  wi::Trap::Ptr trap;
  wi::Values res;
  int kind;

  if (len > UINT32_MAX)
    return fail(ICE__KIND_TOOL_ERROR, msg, msglen,
                "args are %zu bytes; a 32-bit module takes at most 4 GiB", len);
  if (!m->desc.imports.empty()) {
    wi::HostFunc::Ptr logf = wi::HostFunc::New(
        store, wi::FuncType({Type::I32, Type::I32}, {}),
        [&c](wi::Thread &t, const wi::Values &p, wi::Values &,
             wi::Trap::Ptr *tr) { return on_log(c, t, p, tr); });
    imports.assign(m->desc.imports.size(), logf.ref());
  }
  wi::Instance::Ptr inst =
      wi::Instance::Instantiate(store, mod.ref(), imports, &trap);
  if (!inst)
    return fail(ICE__KIND_TOOL_ERROR, msg, msglen, "instantiation: %s",
                trap ? trap->message().c_str() : "unknown error");
  c.mem = wi::Memory::Ptr{store, inst->exports()[m->mem_export]};
  wi::Thread thread(store);

  if (m->has_start) {
    kind = run(c, thread, inst->funcs()[m->start_func], {}, &res);
    if (kind != 0)
      return fail(kind, msg, msglen, "%s", c.msg.c_str());
  }
  kind = run(c, thread, inst->exports()[m->alloc_export],
             {wi::Value::Make(static_cast<uint32_t>(len))}, &res);
  if (kind != 0)
    return fail(kind, msg, msglen, "%s", c.msg.c_str());
  uint32_t ptr = res[0].Get<uint32_t>();
  if (!in_memory(*c.mem, ptr, len))
    return fail(ICE__KIND_TOOL_ERROR, msg, msglen,
                "ice_alloc(%zu) returned %" PRIu32 ", outside memory "
                "(%" PRIu64 " bytes)",
                len, ptr, c.mem->ByteSize());
  if (len > 0)
    memcpy(c.mem->UnsafeData() + ptr, args, len);

  kind =
      run(c, thread, inst->exports()[m->run_export],
          {wi::Value::Make(ptr), wi::Value::Make(static_cast<uint32_t>(len))},
          &res);
  if (kind != 0)
    return fail(kind, msg, msglen, "%s", c.msg.c_str());
  uint64_t r = res[0].Get<uint64_t>();
  uint64_t optr = r >> 32, olen = r & 0xffffffffu;
  if (!in_memory(*c.mem, optr, olen))
    return fail(ICE__KIND_TOOL_ERROR, msg, msglen,
                "the output range [%" PRIu64 ", %" PRIu64 ") is outside "
                "memory (%" PRIu64 " bytes)",
                optr, optr + olen, c.mem->ByteSize());
  char *o = static_cast<char *>(ice__malloc(olen + 1));
  if (o == NULL)
    return fail(ICE__KIND_INTERNAL, msg, msglen, "out of memory");
  memcpy(o, c.mem->UnsafeData() + optr, olen);
  o[olen] = '\0';
  *out = o;
  *out_len = olen;
  return 0;
}

} // namespace

/* ---- The C interface --------------------------------------------------- */

extern "C" int ice__wasm_load(const char *path, const char *export_name,
                              uint32_t memory_pages, ice__wasm_mod_t **out,
                              char *msg, size_t msglen) {
  *out = NULL;
  try {
    return load(path, export_name, memory_pages, out, msg, msglen);
  } catch (const std::bad_alloc &) {
    return fail(ICE_ENOMEM, msg, msglen, "out of memory");
  } catch (const std::exception &e) {
    return fail(ICE_EINVAL, msg, msglen, "cannot load the module: %s",
                e.what());
  } catch (...) {
    return fail(ICE_EINVAL, msg, msglen, "cannot load the module");
  }
}

extern "C" void ice__wasm_free(ice__wasm_mod_t *m) {
  delete m;
}

extern "C" const char *ice__wasm_export(const ice__wasm_mod_t *m) {
  return m->export_name.c_str();
}

extern "C" int ice__wasm_call(const ice__wasm_mod_t *m, const char *args,
                              size_t len, uint64_t fuel, ice__wasm_log_fn log,
                              void *data, const ice__wasm_flag_t *stop,
                              char **out, size_t *out_len, char *msg,
                              size_t msglen) {
  *out = NULL;
  *out_len = 0;
  try {
    return call(m, args, len, fuel, log, data, stop, out, out_len, msg, msglen);
  } catch (const std::bad_alloc &) {
    return fail(ICE__KIND_INTERNAL, msg, msglen, "out of memory");
  } catch (const std::exception &e) {
    return fail(ICE__KIND_INTERNAL, msg, msglen, "%s", e.what());
  } catch (...) {
    return fail(ICE__KIND_INTERNAL, msg, msglen, "unexpected failure");
  }
}
