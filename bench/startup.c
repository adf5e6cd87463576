/* W6's baselines (bench/suite.py): programs that link libraries and exit.
 * Built twice. Plain, it links what ice needs to load and run a workflow,
 * libuv, jansson and libfyaml: the target of issue 13 compares `ice run`
 * of a one-node workflow with it. With -DICE_LIBS it also links what the
 * `ice` command links besides (libcurl and its dependencies, SQLite, and
 * libstdc++ for wabt), which shows what the link line alone costs. One
 * function of each library is called, so that none can be dropped and the
 * dynamic linker must load and relocate them all; nothing else happens. */
#include <jansson.h>
#include <libfyaml.h>
#include <uv.h>
#ifdef ICE_LIBS
#include <curl/curl.h>
#include <seccomp.h>
#include <sqlite3.h>
#endif

#include <stdio.h>
#include <string.h>

int main(void) {
  /* The versions are compared with the empty string only so that the
   * calls cannot be dropped; nothing is printed. */
  if (uv_version() == 0 || strcmp(jansson_version_str(), "") == 0 ||
      strcmp(fy_library_version(), "") == 0)
    puts("?");
#ifdef ICE_LIBS
  if (curl_version() == NULL || sqlite3_libversion() == NULL ||
      seccomp_version() == NULL)
    puts("?");
#endif
  return 0;
}
