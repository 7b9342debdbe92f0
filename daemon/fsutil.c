/* Directory creation and atomic file replacement. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory %s: %s", buf, strerror(errno));
            return -1;
        }
        *p = saved;
        if (!saved)
            break;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", path);
        return -1;
    }
    return 0;
}

int fs_sync_parent(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fs_atomic_open(struct atomic_file *a, const char *path, char *err, size_t errlen)
{
    snprintf(a->path, sizeof a->path, "%s", path);
    if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof a->tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        snprintf(err, errlen, "cannot create %s: %s", a->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

void fs_atomic_abort(struct atomic_file *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
}

int fs_atomic_commit(struct atomic_file *a, char *err, size_t errlen)
{
    const char *what = "write";
    if (ferror(a->f))
        goto fail;
    what = "flush";
    if (fflush(a->f) != 0)
        goto fail;
    what = "fsync";
    if (fsync(fileno(a->f)) != 0)
        goto fail;
    what = "close";
    FILE *closing = a->f;
    a->f = NULL;
    if (fclose(closing) != 0)
        goto fail;
    what = "rename";
    if (rename(a->tmp, a->path) != 0)
        goto fail;
    fs_sync_parent(a->path);
    return 0;
fail: {
    int saved = errno;
    fs_atomic_abort(a);
    snprintf(err, errlen, "cannot %s %s: %s", what, a->tmp, saved ? strerror(saved) : "I/O error");
    return -1;
}
}

int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    struct atomic_file a;
    if (fs_atomic_open(&a, path, err, errlen))
        return -1;
    if (len && fwrite(data, 1, len, a.f) != len) {
        int saved = errno;
        fs_atomic_abort(&a);
        snprintf(err, errlen, "cannot write %s: %s", a.tmp, strerror(saved));
        return -1;
    }
    return fs_atomic_commit(&a, err, errlen);
}
