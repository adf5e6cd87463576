/* Whole-file reads with a size cap, for workflow files (readfile.h). */
#include "readfile.h"

#include "diag.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ice.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ice__file_open(const char *path, int regular_only, int *fd, struct stat *st,
                   char *msg, size_t msglen) {
  int f, err;

  *fd = -1;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer. O_NOCTTY: a
   * terminal named here must not become ours. */
  do
    f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  while (f < 0 && errno == EINTR);
  if (f < 0) {
    err = errno;
    snprintf(msg, msglen, "%s", strerror(err));
    return err == ENOENT || err == ENOTDIR ? ICE_ENOENT : ICE_EIO;
  }
  if (fstat(f, st) != 0) {
    snprintf(msg, msglen, "%s", strerror(errno));
    close(f);
    return ICE_EIO;
  }
  if (S_ISDIR(st->st_mode)) {
    snprintf(msg, msglen, "%s", strerror(EISDIR));
    close(f);
    return ICE_EIO;
  }
  if (!S_ISREG(st->st_mode)) {
    if (regular_only) {
      snprintf(msg, msglen, "not a regular file");
      close(f);
      return ICE_EIO;
    }
    /* A pipe with a writer is read to its end like a file; one without a
     * writer reads as empty. */
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0)
      fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
  }
  *fd = f;
  return 0;
}

static int too_large(char *msg, size_t msglen) {
  snprintf(msg, msglen,
           "larger than the " ICE__MAX_FILE_TEXT " limit of workflow files");
  return ICE_EIO;
}

int ice__file_slurp(int fd, const struct stat *st, char **out, size_t *len,
                    char *msg, size_t msglen) {
  size_t cap, n = 0;
  char *buf;

  *out = NULL;
  *len = 0;
  if (S_ISREG(st->st_mode) && (uintmax_t)st->st_size > ICE__MAX_FILE_BYTES) {
    close(fd);
    return too_large(msg, msglen);
  }
  /* The size of a regular file, else a start; one byte more than the cap
   * is read at most, to tell "exactly the cap" from "over it". */
  cap = S_ISREG(st->st_mode) ? (size_t)st->st_size + 1 : 65536;
  buf = ice__malloc(cap + 1);
  if (buf == NULL) {
    close(fd);
    return ICE_ENOMEM;
  }
  for (;;) {
    ssize_t got;
    if (n == cap) {
      size_t ncap =
          cap * 2 > ICE__MAX_FILE_BYTES + 1 ? ICE__MAX_FILE_BYTES + 1 : cap * 2;
      char *nb;
      if (ncap <= cap) {
        ice__free(buf);
        close(fd);
        return too_large(msg, msglen);
      }
      nb = ice__realloc(buf, ncap + 1);
      if (nb == NULL) {
        ice__free(buf);
        close(fd);
        return ICE_ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      snprintf(msg, msglen, "%s", strerror(errno));
      ice__free(buf);
      close(fd);
      return ICE_EIO;
    }
    if (got == 0)
      break;
    n += (size_t)got;
  }
  close(fd);
  if (n > ICE__MAX_FILE_BYTES) {
    ice__free(buf);
    return too_large(msg, msglen);
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

int ice__file_read(const char *path, int regular_only, char **out, size_t *len,
                   char *msg, size_t msglen) {
  struct stat st;
  int fd, rc;

  *out = NULL;
  *len = 0;
  rc = ice__file_open(path, regular_only, &fd, &st, msg, msglen);
  if (rc != 0)
    return rc;
  return ice__file_slurp(fd, &st, out, len, msg, msglen);
}

int ice__file_read_diag(const char *path, const char *what, char **out,
                        size_t *len, ice_diags_t *diags) {
  char why[256], msg[320];
  int rc = ice__file_read(path, 0, out, len, why, sizeof(why));

  if (rc != 0) {
    snprintf(msg, sizeof(msg), "cannot read the %s: %s", what, why);
    ice__diags_add_sev(diags, ICE_DIAG_ERROR, path, 0, 0, msg);
  }
  return rc;
}
