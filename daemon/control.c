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

/* Reads exactly len bytes within timeout_ms overall; -1 on error or timeout. */
static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    while (len > 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, timeout_ms);
        if (r <= 0)
            return -1;
        ssize_t got = read(fd, p, len);
        if (got <= 0) {
            if (got < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t put = send(fd, p, len, MSG_NOSIGNAL);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += put;
        len -= (size_t)put;
    }
    return 0;
}

static int send_message(int fd, const ProtobufCMessage *msg)
{
    uint8_t buf[4 + CONTROL_MAX_MESSAGE];
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > CONTROL_MAX_MESSAGE)
        return -1;
    protobuf_c_message_pack(msg, buf + 4);
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(len >> (8 * i));
    return write_full(fd, buf, 4 + len);
}

/* Reads one framed message body into buf; returns its length, -1 on I/O
 * error, -2 when it announces more than CONTROL_MAX_MESSAGE bytes. */
static long read_message(int fd, uint8_t *buf, int timeout_ms)
{
    uint8_t head[4];
    if (read_full(fd, head, 4, timeout_ms))
        return -1;
    uint32_t len = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
                   (uint32_t)head[3] << 24;
    if (len > CONTROL_MAX_MESSAGE)
        return -2;
    if (len && read_full(fd, buf, len, timeout_ms))
        return -1;
    return (long)len;
}

static void reply_error(int fd, const char *text)
{
    Ddtrain__ControlReply r = DDTRAIN__CONTROL_REPLY__INIT;
    r.ok = 0;
    r.error = (char *)text;
    send_message(fd, &r.base);
}

static void serve_client(struct control *c, int fd)
{
    uint8_t buf[CONTROL_MAX_MESSAGE];
    long len = read_message(fd, buf, 2000);
    if (len == -2) {
        char text[96];
        snprintf(text, sizeof text, "request larger than the %d-byte limit", CONTROL_MAX_MESSAGE);
        reply_error(fd, text);
        return;
    }
    if (len < 0)
        return;
    Ddtrain__ControlRequest *req = ddtrain__control_request__unpack(NULL, (size_t)len, buf);
    if (!req) {
        reply_error(fd, "malformed request: not a ControlRequest message");
        return;
    }
    Ddtrain__ControlReply r = DDTRAIN__CONTROL_REPLY__INIT;
    struct control_status s;
    pthread_mutex_lock(&c->lock);
    s = c->status;
    switch (req->kind) {
    case DDTRAIN__CONTROL_REQUEST__KIND__CHECKPOINT:
        c->want_checkpoint = 1;
        break;
    case DDTRAIN__CONTROL_REQUEST__KIND__STOP:
        c->want_stop = 1;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&c->lock);
    if (req->kind < DDTRAIN__CONTROL_REQUEST__KIND__STATUS ||
        req->kind > DDTRAIN__CONTROL_REQUEST__KIND__STOP) {
        ddtrain__control_request__free_unpacked(req, NULL);
        reply_error(fd, "unknown request kind: allowed STATUS, CHECKPOINT, STOP");
        return;
    }
    ddtrain__control_request__free_unpacked(req, NULL);
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
    send_message(fd, &r.base);
}

static void *serve(void *arg)
{
    struct control *c = arg;
    for (;;) {
        struct pollfd pfd[2] = { { .fd = c->listen_fd, .events = POLLIN },
                                 { .fd = c->wake[0], .events = POLLIN } };
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents)
            break;
        if (!(pfd[0].revents & POLLIN))
            continue;
        int fd = accept(c->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_client(c, fd);
        close(fd);
    }
    return NULL;
}

/* Is somebody answering on this address? */
static int socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
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
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    /* only the owner may talk to the coordinator: 0600 from the start */
    mode_t old = umask(0177);
    int rc = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || listen(c->listen_fd, 8) != 0) {
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

int control_request(const char *run_dir, int kind, Ddtrain__ControlReply **reply_out,
                    int timeout_ms, char *err, size_t errlen)
{
    *reply_out = NULL;
    int dir_fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        snprintf(err, errlen, "--run-dir %s: %s", run_dir, strerror(errno));
        return -1;
    }
    struct sockaddr_un sa;
    int rc = -1, fd = -1;
    if (control_socket_address(run_dir, dir_fd, &sa, err, errlen))
        goto out;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "%s/%s: no coordinator answers (%s): is the run still going?",
                 run_dir, CONTROL_SOCKET_NAME, strerror(errno));
        goto out;
    }
    Ddtrain__ControlRequest req = DDTRAIN__CONTROL_REQUEST__INIT;
    req.kind = (Ddtrain__ControlRequest__Kind)kind;
    if (send_message(fd, &req.base)) {
        snprintf(err, errlen, "sending the request: %s", strerror(errno));
        goto out;
    }
    uint8_t buf[CONTROL_MAX_MESSAGE];
    long len = read_message(fd, buf, timeout_ms);
    if (len < 0) {
        snprintf(err, errlen, "no reply from the coordinator within %d ms", timeout_ms);
        goto out;
    }
    *reply_out = ddtrain__control_reply__unpack(NULL, (size_t)len, buf);
    if (!*reply_out) {
        snprintf(err, errlen, "the coordinator's reply is malformed");
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    close(dir_fd);
    return rc;
}
