/* The coordinator's control socket: a Unix socket (mode 0600) in the run
 * directory, served by a thread that never calls MPI. Each message is a
 * 4-byte little-endian length and a protobuf ControlRequest / ControlReply. */
#ifndef DDT_CONTROL_H
#define DDT_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "ddtrain.pb-c.h"

#define CONTROL_MAX_MESSAGE 4096
#define CONTROL_SOCKET_NAME "control.sock"

struct control_status {
    unsigned long step, epoch, global_batch;
    double lr, recent_loss, samples_per_sec, eta_seconds;
    char last_checkpoint[512];
    char stall[512];         /* a long wait on other ranks (stall.c), or "" */
};

struct control {
    int listen_fd;
    int wake[2];            /* a pipe that ends the thread */
    int dir_fd;             /* the run directory, for long paths */
    char path[4200];
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    struct control_status status;
    int want_checkpoint, want_stop; /* under lock */
};

/* Binds RUN/control.sock; refuses when another coordinator answers on it,
 * replaces a stale socket file. Returns 0 or -1 with err. */
int control_start(struct control *c, const char *run_dir, char *err, size_t errlen);
void control_stop(struct control *c);

void control_publish(struct control *c, const struct control_status *s);

/* Returns and clears the requests that arrived since the last call. */
void control_take(struct control *c, int *checkpoint, int *stop);

/* Client side: connects to RUN/control.sock, sends one request, waits for the
 * reply (up to timeout_ms). Returns 0 or -1 with err. The reply is unpacked
 * into *reply_out and must be freed by the caller with
 * ddtrain__control_reply__free_unpacked. */
int control_request(const char *run_dir, int kind, Ddtrain__ControlReply **reply_out,
                    int timeout_ms, char *err, size_t errlen);

/* Fills addr with a path for the socket of run_dir, going through
 * /proc/self/fd/DIRFD when the plain path is too long for sun_path. */
int control_socket_address(const char *run_dir, int dir_fd, void *addr, char *err,
                           size_t errlen);

#endif
