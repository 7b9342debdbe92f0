/* Opening the files a run reads (data, checkpoints, config files) so that
 * only regular files get through: a FIFO would block the reader forever and
 * a directory would be read as garbage ("truncated: 4096 bytes"). */
#ifndef DDT_REGFILE_H
#define DDT_REGFILE_H

#include <stddef.h>
#include <stdio.h>

/* Opens path read-only. Returns the descriptor, or -1 with err filled:
 * "PATH: cannot open: REASON" (errno kept), or "PATH: not a regular file
 * (it is a directory)" for a directory, FIFO, socket or device. */
int regfile_open(const char *path, char *err, size_t errlen);

/* The same as a stdio stream opened with mode ("r" or "rb"). */
FILE *regfile_fopen(const char *path, const char *mode, char *err, size_t errlen);

#endif
