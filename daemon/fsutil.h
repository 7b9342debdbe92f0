/* File-system helpers that never leave a half-written file behind. */
#ifndef DDT_FSUTIL_H
#define DDT_FSUTIL_H

#include <stddef.h>

/* mkdir -p; returns 0 or -1 with err naming the path and the reason. */
int fs_mkdir_p(const char *path, char *err, size_t errlen);

#include <stdio.h>

/* A file being replaced atomically: written under path.tmp.PID, then
 * fflush, fsync, close, rename, fsync of the directory. Until the commit
 * succeeds the old file (if any) is untouched, and on failure the temporary
 * is removed: no half-written file is ever left under the real name. */
struct atomic_file {
    FILE *f;
    char path[4096], tmp[4200];
};

int fs_atomic_open(struct atomic_file *a, const char *path, char *err, size_t errlen);
/* Commits what was written to a->f (it is closed either way). */
int fs_atomic_commit(struct atomic_file *a, char *err, size_t errlen);
/* Gives up: closes and removes the temporary. */
void fs_atomic_abort(struct atomic_file *a);

/* The whole of data to path, atomically as above. */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* fsync of the directory that holds path. */
int fs_sync_parent(const char *path);

#endif
