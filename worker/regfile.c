/* Read-only opens that refuse anything but a regular file, by its type. */
#include "regfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a plain file";
}

int regfile_open(const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO that has no writer would otherwise wait for
     * one, before the type could even be looked at */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: not a regular file (it is %s)", path, file_kind(st.st_mode));
        errno = EINVAL;
        return -1;
    }
    /* reads of a regular file never block; the flag goes for tidiness, so
     * that whoever gets the descriptor sees an ordinary one */
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

FILE *regfile_fopen(const char *path, const char *mode, char *err, size_t errlen)
{
    int fd = regfile_open(path, err, errlen);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, mode);
    if (!f) {
        int saved = errno;
        close(fd);
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(saved));
        errno = saved;
    }
    return f;
}
