/* Standalone reproducer of a leak inside libfyaml 0.7.12 (Debian 12), kept
 * as evidence for the suppression in tests/lsan.supp. Not built by CMake.
 *
 *   clang -g -fsanitize=address fuzz/regressions/libfyaml-quote-escapes.c \
 *     $(pkg-config --cflags --libs libfyaml) -o /tmp/fyleak && /tmp/fyleak
 *
 * LeakSanitizer reports 512 bytes (more with more escapes: 4 KB for 46)
 * realloc'd under fy_token_get_text -> fy_atom_format_text ->
 * fy_atom_iter_chunk_next (run with LSAN_OPTIONS=fast_unwind_on_malloc=0
 * to see those frames). Every event is freed and the parser is destroyed:
 * the chunk array belongs to an iterator local to fy_atom_format_text,
 * which returns NULL when a chunk does not fit the buffer, without calling
 * fy_atom_iter_finish. The text returned is still right. */
#include <libfyaml.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  /* One single-quoted scalar: five '' escapes, i.e. the text "'''''". */
  static const char yaml[] = "''''''''''''";
  struct fy_parse_cfg cfg;
  struct fy_parser *fyp;
  struct fy_event *ev;

  memset(&cfg, 0, sizeof(cfg));
  cfg.flags = FYPCF_QUIET;
  fyp = fy_parser_create(&cfg);
  if (fyp == NULL || fy_parser_set_string(fyp, yaml, strlen(yaml)) != 0)
    return 2;
  while ((ev = fy_parser_parse(fyp)) != NULL) {
    if (ev->type == FYET_SCALAR) {
      size_t n = 0;
      const char *s = fy_token_get_text(ev->scalar.value, &n);
      fprintf(stderr, "scalar: %.*s\n", (int)n, s != NULL ? s : "");
    }
    fy_parser_event_free(fyp, ev);
  }
  fy_parser_destroy(fyp);
  return 0;
}
