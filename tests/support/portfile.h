/* Waiting for a test server's port file (tests/support/chat_server.py
 * --port-file): the unit tests (helpers.c) and the soak, which does not
 * link the cmocka helpers, share it. */
#ifndef ICE_TEST_PORTFILE_H
#define ICE_TEST_PORTFILE_H

#include <stdio.h>
#include <unistd.h>

/* The port written to path, waiting up to 15 s for it; 0 when it never
 * came. */
static inline int wait_port_file(const char *path) {
  int port = 0;

  for (int i = 0; i < 1500 && port == 0; i++) {
    FILE *f = fopen(path, "r");
    if (f != NULL) {
      if (fscanf(f, "%d", &port) != 1)
        port = 0;
      fclose(f);
    }
    if (port == 0)
      usleep(10000);
  }
  return port;
}

#endif
