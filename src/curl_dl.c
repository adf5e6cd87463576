/* libcurl through dlopen (see curl_dl.h). */
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ice__curl_api_t ice__curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char load_msg[512];

/* The symbol of each slot, in the order of ice__curl_api_t. */
static const char *const names[] = {"curl_global_init",
                                    "curl_version_info",
                                    "curl_easy_init",
                                    "curl_easy_setopt",
                                    "curl_easy_getinfo",
                                    "curl_easy_perform",
                                    "curl_easy_cleanup",
                                    "curl_easy_strerror",
                                    "curl_slist_append",
                                    "curl_slist_free_all",
                                    "curl_multi_init",
                                    "curl_multi_setopt",
                                    "curl_multi_add_handle",
                                    "curl_multi_remove_handle",
                                    "curl_multi_socket_action",
                                    "curl_multi_assign",
                                    "curl_multi_info_read",
                                    "curl_multi_cleanup",
                                    "curl_url",
                                    "curl_url_set",
                                    "curl_url_get",
                                    "curl_url_cleanup",
                                    "curl_free",
                                    "curl_getdate"};

_Static_assert(sizeof(names) / sizeof(names[0]) * sizeof(void (*)(void)) ==
                   sizeof(ice__curl_api_t),
               "one name per slot of ice__curl_api_t");

static void load(void) {
  const char *lib = getenv("ICE_LIBCURL");
  ice__curl_api_t api;
  void (**slot)(void) = (void (**)(void))(void *)&api;
  void *h;
  CURLcode rc;

  if (lib == NULL || lib[0] == '\0')
    lib = "libcurl.so.4";
  /* RTLD_NODELETE: never unloaded, so curl's own threads (its resolver)
   * and atexit handlers always find their code. */
  h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (h == NULL) {
    snprintf(load_msg, sizeof(load_msg),
             "HTTP is not available: cannot load libcurl (%s); install it "
             "(Debian: libcurl4)",
             dlerror());
    return;
  }
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    void *f = dlsym(h, names[i]);

    if (f == NULL) {
      snprintf(load_msg, sizeof(load_msg),
               "HTTP is not available: %s has no %s (libcurl 7.62 or later "
               "is needed)",
               lib, names[i]);
      return; /* the handle stays open: RTLD_NODELETE anyway */
    }
    /* POSIX: a data pointer from dlsym may be read as a function
     * pointer. */
    memcpy(&slot[i], &f, sizeof(f));
  }
  rc = api.global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    snprintf(load_msg, sizeof(load_msg),
             "HTTP is not available: curl_global_init failed: %s",
             api.easy_strerror(rc));
    return;
  }
  ice__curl = api;
  load_rc = 0;
}

int ice__curl_load(void) {
  pthread_once(&once, load);
  return load_rc;
}

const char *ice__curl_error(void) {
  pthread_once(&once, load);
  return load_rc == 0 ? NULL : load_msg;
}
