/* The coordinator's control socket: a Unix socket (mode 0600) in the run
 * directory, served by a thread that never calls MPI. Each message is a
 * 4-byte little-endian length and a protobuf ControlRequest / ControlReply;
 * one request and one reply per connection.
 *
 * A request is either answered or not carried out. The server acts on a
 * request (sets want_checkpoint / want_stop) only when all of it arrived
 * within CONTROL_REQUEST_MS of the connection being accepted, it decoded as a
 * known kind, and the whole reply was handed to the socket within
 * CONTROL_REPLY_MS more; the flag is set under the same lock as that last
 * write. A connection that misses its deadline, hangs up early, is dropped
 * for a newer one or is still open when the server stops is closed without a
 * reply and its request is never carried out, however much of it came.
 * Hence a client that gets end-of-file instead of a reply knows the request
 * was not carried out; only a client that gives up waiting after the server
 * wrote the reply (a timeout shorter than the server's bounds) can miss the
 * reply of a request that was carried out. */
#ifndef DDT_CONTROL_H
#define DDT_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ddtrain.pb-c.h"

#define CONTROL_MAX_MESSAGE 4096
#define CONTROL_SOCKET_NAME "control.sock"
#define CONTROL_MAX_CLIENTS 16  /* open connections; a new one drops the oldest */
#define CONTROL_REQUEST_MS 2000 /* from accept to the request's last byte */
#define CONTROL_REPLY_MS 1000   /* then for the whole reply to be written */

struct control_conn; /* one open connection, private to control.c */

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
    struct control_conn *conns; /* CONTROL_MAX_CLIENTS slots, the thread's own */
    unsigned long accepted;     /* the thread's count of connections, to find the oldest */
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

/* Decodes one request body (the bytes after the length) and checks its kind:
 * 0 with *kind, or -1 with *why, the text the server replies with. */
int control_decode_request(const uint8_t *buf, size_t len, int *kind, const char **why);

/* Client side: connects to RUN/control.sock, sends one request, waits for the
 * reply; timeout_ms bounds all of it, the connect included (a coordinator
 * whose backlog is full does not hold the caller). Returns 0 or -1 with err. The reply is unpacked
 * into *reply_out and must be freed by the caller with
 * ddtrain__control_reply__free_unpacked. */
int control_request(const char *run_dir, int kind, Ddtrain__ControlReply **reply_out,
                    int timeout_ms, char *err, size_t errlen);

/* Fills addr with a path for the socket of run_dir, going through
 * /proc/self/fd/DIRFD when the plain path is too long for sun_path. */
int control_socket_address(const char *run_dir, int dir_fd, void *addr, char *err,
                           size_t errlen);

#endif
