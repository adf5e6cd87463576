/* libFuzzer target: bytes -> the workflow loaders and validation. The
 * first byte picks JSON or YAML; the rest is the file. Any input must give
 * a workflow or diagnostics: never a crash, a hang or a leak. */
#include <ice.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ice_engine_t *e;
  ice_workflow_t *wf = NULL;
  ice_diags_t d = {0};

  if (size < 1)
    return 0;
  if (e == NULL && ice_engine_new(&e, NULL, NULL) != 0)
    abort();
  ice_workflow_parse(e, "fuzz", (const char *)data + 1, size - 1, data[0] & 1,
                     &wf, &d);
  for (size_t i = 0; i < d.count; i++) {
    char *s = ice_diag_format(&d.items[i]);
    free(s);
  }
  ice_diags_free(&d);
  ice_workflow_free(wf);
  return 0;
}
