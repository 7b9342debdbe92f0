/* Log lines that say who wrote them: `rank 0 coord 12:00:01.123 W ...`. */
#ifndef DDT_LOG_H
#define DDT_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2 };

/* Who we are, set once after MPI_Init; role is "coord" or "worker". */
void log_set_identity(int rank, const char *role);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) \
    do { if (log_enabled(LOG_WARN)) log_msg(LOG_WARN, __VA_ARGS__); } while (0)
#define log_info(...) \
    do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)

#endif
