/* Reading a workflow file whole, without hanging on what never ends: a
 * FIFO without a writer, /dev/zero, /dev/urandom. Files are opened
 * non-blocking and read up to a size cap. */
#ifndef ICE_READFILE_H
#define ICE_READFILE_H

#include <ice.h>
#include <stddef.h>
#include <sys/stat.h>

/* Largest workflow file read, in bytes (64 MiB). */
#define ICE__MAX_FILE_BYTES ((size_t)64 << 20)
#define ICE__MAX_FILE_TEXT "64 MiB"

/* Opens path for reading and fstat()s it into *st. Directories are always
 * refused; other files that are not regular (FIFOs, devices, sockets) only
 * when regular_only is set. Returns 0 with *fd set, or ICE_ENOENT /
 * ICE_EIO with a reason in msg ("No such file or directory", "not a
 * regular file", ...). */
int ice__file_open(const char *path, int regular_only, int *fd, struct stat *st,
                   char *msg, size_t msglen);

/* Reads everything from fd (at most ICE__MAX_FILE_BYTES) into a malloc'd
 * buffer (NUL-terminated; *len excludes the NUL) and closes fd. Returns 0,
 * ICE_EIO with a reason in msg (too large, read error) or ICE_ENOMEM. */
int ice__file_slurp(int fd, const struct stat *st, char **out, size_t *len,
                    char *msg, size_t msglen);

/* Both of the above. */
int ice__file_read(const char *path, int regular_only, char **out, size_t *len,
                   char *msg, size_t msglen);

/* ice__file_read for a file the user named (a workflow, a tool file): a
 * failure is also reported in diags as `PATH: error: cannot read the
 * WHAT: REASON`. */
int ice__file_read_diag(const char *path, const char *what, char **out,
                        size_t *len, ice_diags_t *diags);

#endif
