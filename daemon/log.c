/* Level-checked logging to stderr with rank, role and wall-clock time. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static int log_rank;
static const char *log_role = "coord";
/* no option sets it yet: everything up to info is written */
static const enum log_level log_level_now = LOG_INFO;

void log_set_identity(int rank, const char *role)
{
    log_rank = rank;
    log_role = role;
}

int log_enabled(enum log_level level)
{
    return level <= log_level_now;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char letter[] = { 'E', 'W', 'I' };
    struct timeval tv;
    struct tm tm;
    char line[2048];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "rank %d %s %02d:%02d:%02d.%03d %c ", log_rank, log_role,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), letter[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one write per line so ranks' lines do not interleave mid-line */
    fprintf(stderr, "%s\n", line);
}
