/* Control socket server (a thread on the coordinator) and client. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ddtrain.pb-c.h"

int control_socket_address(const char *run_dir, int dir_fd, void *addr, char *err,
                           size_t errlen)
{
    struct sockaddr_un *sa = addr;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", run_dir, CONTROL_SOCKET_NAME);
    if (n > 0 && (size_t)n < sizeof sa->sun_path)
        return 0;
    /* too long for sun_path: reach the directory through its descriptor */
    n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dir_fd,
                 CONTROL_SOCKET_NAME);
    if (dir_fd < 0 || n <= 0 || (size_t)n >= sizeof sa->sun_path) {
        snprintf(err, errlen, "%s: the path of the control socket is too long", run_dir);
        return -1;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left of a deadline, as a poll() timeout; 0 once it has passed. */
static int ms_left(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static uint32_t frame_length(const uint8_t head[4])
{
    return (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
           (uint32_t)head[3] << 24;
}

/* Packs msg behind its 4-byte length into buf (4 + CONTROL_MAX_MESSAGE
 * bytes); returns the frame's length, 0 when msg is too large. */
static size_t frame_message(uint8_t *buf, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > CONTROL_MAX_MESSAGE)
        return 0;
    protobuf_c_message_pack(msg, buf + 4);
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(len >> (8 * i));
    return 4 + len;
}

/* ---- server: one thread, one poll() loop, every socket non-blocking ----
 *
 * No client can hold the thread: it never waits on one connection, only in
 * poll() over all of them, and each connection has an overall deadline, not a
 * per-read one, so trickling bytes buys nothing. The thread shares only
 * c->status and the two request flags with the training loop, under c->lock,
 * and never calls MPI. */

struct control_conn {
    int fd;                /* -1: a free slot */
    unsigned long serial;  /* order of acceptance: the smallest is the oldest */
    int64_t deadline;      /* monotonic ms: for the request, then for the reply */
    bool writing;          /* the request is decoded, the reply is going out */
    int kind;              /* the request the reply grants, acted on once it is written */
    size_t len, off;       /* reading: bytes in buf; writing: frame length and bytes sent */
    uint8_t buf[4 + CONTROL_MAX_MESSAGE]; /* the request, then the reply over it */
};

static void conn_close(struct control_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}

static void conn_reply(struct control_conn *k, const ProtobufCMessage *msg)
{
    k->len = frame_message(k->buf, msg);
    k->off = 0;
    k->writing = true;
    k->deadline = now_ms() + CONTROL_REPLY_MS;
}

static void conn_reply_error(struct control_conn *k, const char *text)
{
    Ddtrain__ControlReply r = DDTRAIN__CONTROL_REPLY__INIT;
    r.ok = 0;
    r.error = (char *)text;
    k->kind = 0;
    conn_reply(k, &r.base);
}

int control_decode_request(const uint8_t *buf, size_t len, int *kind, const char **why)
{
    Ddtrain__ControlRequest *req = ddtrain__control_request__unpack(NULL, len, buf);
    if (!req) {
        *why = "malformed request: not a ControlRequest message";
        return -1;
    }
    *kind = (int)req->kind;
    ddtrain__control_request__free_unpacked(req, NULL);
    if (*kind < DDTRAIN__CONTROL_REQUEST__KIND__STATUS ||
        *kind > DDTRAIN__CONTROL_REQUEST__KIND__STOP) {
        *why = "unknown request kind: allowed STATUS, CHECKPOINT, STOP";
        return -1;
    }
    return 0;
}

/* Reads what has arrived of k's request, never past its end (one request per
 * connection). Returns 1 when there is enough to answer (all of it, or a
 * header announcing too much), 0 to wait, -1 when the client hung up or failed. */
static int conn_read(struct control_conn *k)
{
    for (;;) {
        size_t want = 4;
        if (k->len >= 4) {
            uint32_t body = frame_length(k->buf);
            if (body > CONTROL_MAX_MESSAGE)
                return 1;
            want = 4 + body;
        }
        if (k->len == want)
            return 1;
        ssize_t got = read(k->fd, k->buf + k->len, want - k->len);
        if (got > 0) {
            k->len += (size_t)got;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
}

/* Decodes k's complete request and prepares its reply; records nothing yet. */
static void conn_answer(struct control *c, struct control_conn *k)
{
    uint32_t body = frame_length(k->buf);
    if (body > CONTROL_MAX_MESSAGE) {
        char text[96];
        snprintf(text, sizeof text, "request larger than the %d-byte limit", CONTROL_MAX_MESSAGE);
        conn_reply_error(k, text);
        return;
    }
    int kind;
    const char *why;
    if (control_decode_request(k->buf + 4, body, &kind, &why)) {
        conn_reply_error(k, why);
        return;
    }
    struct control_status s;
    pthread_mutex_lock(&c->lock);
    s = c->status;
    pthread_mutex_unlock(&c->lock);
    Ddtrain__ControlReply r = DDTRAIN__CONTROL_REPLY__INIT;
    r.ok = 1;
    r.step = s.step;
    r.epoch = s.epoch;
    r.lr = s.lr;
    r.global_batch = (uint32_t)s.global_batch;
    r.recent_loss = s.recent_loss;
    r.samples_per_sec = s.samples_per_sec;
    r.eta_seconds = s.eta_seconds;
    r.last_checkpoint = s.last_checkpoint;
    r.stall = s.stall;
    k->kind = kind;
    conn_reply(k, &r.base);
}

/* Sends what remains of k's reply. The send that completes it and the
 * request it grants are one step under c->lock: a reply that could not be
 * delivered records nothing, and a client that has read its reply and then
 * looks (control_take) finds the request recorded. The sends never block, so
 * the lock is held for microseconds. Returns 1 when done, 0 to wait, -1 when
 * the client is gone. */
static int conn_write(struct control *c, struct control_conn *k)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    while (k->off < k->len) {
        ssize_t put = send(k->fd, k->buf + k->off, k->len - k->off, MSG_NOSIGNAL);
        if (put > 0) {
            k->off += (size_t)put;
            continue;
        }
        if (put < 0 && errno == EINTR)
            continue;
        rc = put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        break;
    }
    if (k->len > 0 && k->off == k->len) {
        rc = 1;
        if (k->kind == DDTRAIN__CONTROL_REQUEST__KIND__CHECKPOINT)
            c->want_checkpoint = 1;
        else if (k->kind == DDTRAIN__CONTROL_REQUEST__KIND__STOP)
            c->want_stop = 1;
    } else if (k->len == 0) {
        rc = -1; /* a reply that did not pack: nothing to send, nothing granted */
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Moves k on after poll() said it is ready; closes it when it is done. */
static void conn_step(struct control *c, struct control_conn *k)
{
    if (!k->writing) {
        int r = conn_read(k);
        if (r < 0) {
            conn_close(k); /* hung up before the end: not carried out */
            return;
        }
        if (r == 0)
            return;
        conn_answer(c, k);
    }
    if (conn_write(c, k) != 0)
        conn_close(k);
}

/* A free slot, or the oldest connection's, dropped without a reply. */
static struct control_conn *conn_slot(struct control *c)
{
    struct control_conn *oldest = NULL;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct control_conn *k = &c->conns[i];
        if (k->fd < 0)
            return k;
        if (!oldest || k->serial < oldest->serial)
            oldest = k;
    }
    conn_close(oldest);
    return oldest;
}

/* Accepts every connection waiting in the backlog, so it never fills while
 * the thread runs. */
static void conn_accept_all(struct control *c)
{
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: none left; anything else: try at the next wake-up */
        }
        struct control_conn *k = conn_slot(c);
        k->fd = fd;
        k->serial = ++c->accepted;
        k->deadline = now_ms() + CONTROL_REQUEST_MS;
        k->writing = false;
        k->kind = 0;
        k->len = k->off = 0;
    }
}

static void *serve(void *arg)
{
    struct control *c = arg;
    struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
    struct control_conn *polled[CONTROL_MAX_CLIENTS];
    for (;;) {
        int n = 0, timeout = -1;
        for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
            struct control_conn *k = &c->conns[i];
            if (k->fd < 0)
                continue;
            int left = ms_left(k->deadline);
            if (timeout < 0 || left < timeout)
                timeout = left;
            pfd[2 + n] = (struct pollfd){ .fd = k->fd, .events = k->writing ? POLLOUT : POLLIN };
            polled[n++] = k;
        }
        pfd[0] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = c->wake[0], .events = POLLIN };
        if (poll(pfd, (nfds_t)(2 + n), timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        int64_t now = now_ms();
        for (int j = 0; j < n; j++) {
            /* the deadline first: bytes that came late complete nothing */
            if (now >= polled[j]->deadline)
                conn_close(polled[j]);
            else if (pfd[2 + j].revents)
                conn_step(c, polled[j]);
        }
        if (pfd[0].revents & POLLIN)
            conn_accept_all(c);
    }
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        conn_close(&c->conns[i]); /* unanswered: not carried out */
    return NULL;
}

/* Is somebody answering on this address? */
static int socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return 0;
    /* non-blocking: a listener with a full backlog (EAGAIN) is alive, and
     * must not hold this check */
    int live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0 || errno == EAGAIN;
    close(fd);
    return live;
}

int control_start(struct control *c, const char *run_dir, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->listen_fd = c->wake[0] = c->wake[1] = -1;
    c->dir_fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dir_fd < 0) {
        snprintf(err, errlen, "%s: %s", run_dir, strerror(errno));
        return -1;
    }
    struct sockaddr_un sa;
    if (control_socket_address(run_dir, c->dir_fd, &sa, err, errlen))
        goto fail;
    snprintf(c->path, sizeof c->path, "%s/%s", run_dir, CONTROL_SOCKET_NAME);
    if (socket_is_live(&sa)) {
        snprintf(err, errlen, "%s: another coordinator is serving this run directory (its control socket answers); stop it first or choose another --run-dir",
                 run_dir);
        goto fail;
    }
    unlinkat(c->dir_fd, CONTROL_SOCKET_NAME, 0); /* a stale socket of a dead run */
    c->conns = malloc(CONTROL_MAX_CLIENTS * sizeof *c->conns);
    if (!c->conns) {
        snprintf(err, errlen, "control socket: out of memory for its connections");
        goto fail;
    }
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->conns[i].fd = -1;
    /* non-blocking: the thread drains the backlog with accept4 until EAGAIN */
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->listen_fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    /* only the owner may talk to the coordinator: 0600 from the start */
    mode_t old = umask(0177);
    int rc = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || listen(c->listen_fd, CONTROL_MAX_CLIENTS) != 0) {
        snprintf(err, errlen, "%s: cannot listen: %s", c->path, strerror(errno));
        goto fail;
    }
    if (pipe2(c->wake, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&c->lock, NULL);
    if (pthread_create(&c->thread, NULL, serve, c) != 0) {
        snprintf(err, errlen, "control socket: cannot start its thread");
        pthread_mutex_destroy(&c->lock);
        goto fail;
    }
    c->running = true;
    return 0;
fail:
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        unlinkat(c->dir_fd, CONTROL_SOCKET_NAME, 0);
    }
    if (c->wake[0] >= 0) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
    close(c->dir_fd);
    free(c->conns);
    c->conns = NULL;
    c->listen_fd = c->dir_fd = -1;
    return -1;
}

void control_stop(struct control *c)
{
    if (!c->running)
        return;
    ssize_t ignored = write(c->wake[1], "x", 1);
    (void)ignored;
    pthread_join(c->thread, NULL);
    close(c->listen_fd);
    unlinkat(c->dir_fd, CONTROL_SOCKET_NAME, 0);
    close(c->wake[0]);
    close(c->wake[1]);
    close(c->dir_fd);
    free(c->conns);
    c->conns = NULL;
    pthread_mutex_destroy(&c->lock);
    c->running = false;
}

void control_publish(struct control *c, const struct control_status *s)
{
    if (!c->running)
        return;
    pthread_mutex_lock(&c->lock);
    c->status = *s;
    pthread_mutex_unlock(&c->lock);
}

void control_take(struct control *c, int *checkpoint, int *stop)
{
    *checkpoint = *stop = 0;
    if (!c->running)
        return;
    pthread_mutex_lock(&c->lock);
    *checkpoint = c->want_checkpoint;
    *stop = c->want_stop;
    c->want_checkpoint = c->want_stop = 0;
    pthread_mutex_unlock(&c->lock);
}

/* ---- client: one deadline over connect, send and receive ---- */

/* Connects the non-blocking fd by deadline. A Unix socket whose listener's
 * backlog is full refuses a non-blocking connect with EAGAIN at once rather
 * than leaving it pending, so that case is retried every few milliseconds.
 * Returns 0, -2 when the deadline passed, -1 with errno otherwise (nobody
 * listens). */
static int connect_by(int fd, const struct sockaddr_un *sa, int64_t deadline)
{
    for (;;) {
        if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            int r = poll(&pfd, 1, ms_left(deadline));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return r == 0 ? -2 : -1;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                return -1;
            errno = soerr;
            return soerr ? -1 : 0;
        }
        if (errno != EAGAIN)
            return -1;
        int left = ms_left(deadline);
        if (left == 0)
            return -2;
        poll(NULL, 0, left < 10 ? left : 10);
    }
}

/* Sends or receives exactly len bytes by deadline on the non-blocking fd.
 * Returns 0, -2 when the deadline passed, -1 on an error or end of file. */
static int transfer_by(int fd, uint8_t *buf, size_t len, bool sending, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = sending ? send(fd, buf, len, MSG_NOSIGNAL) : read(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -1; /* the coordinator hung up */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        struct pollfd pfd = { .fd = fd, .events = sending ? POLLOUT : POLLIN };
        int r = poll(&pfd, 1, ms_left(deadline));
        if (r == 0)
            return -2;
        if (r < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

/* Sends the request and reads its reply on the connected fd; 0 or -1 with err. */
static int exchange(int fd, int kind, Ddtrain__ControlReply **reply_out, int64_t deadline,
                    int timeout_ms, char *err, size_t errlen)
{
    uint8_t buf[4 + CONTROL_MAX_MESSAGE];
    Ddtrain__ControlRequest req = DDTRAIN__CONTROL_REQUEST__INIT;
    req.kind = (Ddtrain__ControlRequest__Kind)kind;
    size_t n = frame_message(buf, &req.base);
    int r = transfer_by(fd, buf, n, true, deadline);
    if (r) {
        snprintf(err, errlen, "sending the request: %s",
                 r == -2 ? "the coordinator does not read it" : strerror(errno));
        return -1;
    }
    r = transfer_by(fd, buf, 4, false, deadline);
    uint32_t len = r ? 0 : frame_length(buf);
    if (!r && len > CONTROL_MAX_MESSAGE) {
        snprintf(err, errlen, "the coordinator's reply is malformed");
        return -1;
    }
    if (!r)
        r = transfer_by(fd, buf, len, false, deadline);
    if (r == -2) {
        snprintf(err, errlen, "no reply from the coordinator within %d ms", timeout_ms);
        return -1;
    }
    if (r) {
        snprintf(err, errlen, "the coordinator closed the connection without a reply: the request was not carried out");
        return -1;
    }
    *reply_out = ddtrain__control_reply__unpack(NULL, len, buf);
    if (!*reply_out) {
        snprintf(err, errlen, "the coordinator's reply is malformed");
        return -1;
    }
    return 0;
}

int control_request(const char *run_dir, int kind, Ddtrain__ControlReply **reply_out,
                    int timeout_ms, char *err, size_t errlen)
{
    *reply_out = NULL;
    int64_t deadline = now_ms() + timeout_ms;
    int dir_fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        snprintf(err, errlen, "--run-dir %s: %s", run_dir, strerror(errno));
        return -1;
    }
    struct sockaddr_un sa;
    int rc = -1, fd = -1;
    if (control_socket_address(run_dir, dir_fd, &sa, err, errlen))
        goto out;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int r = fd < 0 ? -1 : connect_by(fd, &sa, deadline);
    if (r == -2) {
        snprintf(err, errlen, "%s/%s: the coordinator did not accept the connection within %d ms (its control socket is busy): the request was not sent",
                 run_dir, CONTROL_SOCKET_NAME, timeout_ms);
        goto out;
    }
    if (r) {
        snprintf(err, errlen, "%s/%s: no coordinator answers (%s): is the run still going?",
                 run_dir, CONTROL_SOCKET_NAME, strerror(errno));
        goto out;
    }
    rc = exchange(fd, kind, reply_out, deadline, timeout_ms, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    close(dir_fd);
    return rc;
}
