/* File-system helpers that never leave a half-written file behind. */
#ifndef DDT_FSUTIL_H
#define DDT_FSUTIL_H

#include <stddef.h>

/* mkdir -p; returns 0 or -1 with err naming the path and the reason. */
int fs_mkdir_p(const char *path, char *err, int errlen);

/* Writes data to path through path.tmp.PID: write, fflush, fsync, close,
 * rename, fsync of the directory. On failure the temporary is removed and the
 * old file (if any) is untouched. */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, int errlen);

/* fsync of the directory that holds path. */
int fs_sync_parent(const char *path);

#endif
