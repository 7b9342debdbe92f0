/* Fuzz target "control": control-socket requests. An input is what a client
 * sends: a 4-byte little-endian length and a protobuf ControlRequest (or
 * anything else). Every input goes through control_decode_request, the
 * server's own decoding and check; one in eight also goes to a real server
 * (control_start) over its socket, and its answer must be the one the frame
 * calls for: nothing for a frame cut short, an error reply for one over the
 * size limit or one that does not decode, ok otherwise. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zlib.h>

#include "control.h"
#include "fuzz.h"

enum expect { NO_REPLY, REPLY_ERROR, REPLY_OK };

static struct control server;
static char run_dir[4200];
static int server_up;

static void frame(struct fuzz_buf *out, const uint8_t *body, size_t len)
{
    uint8_t head[4];
    for (int i = 0; i < 4; i++)
        head[i] = (uint8_t)(len >> (8 * i));
    fuzz_buf_set(out, head, 4);
    fuzz_buf_insert(out, 4, body, len);
}

static const char *const control_dict[] = { "\x08\x01", "\x08\x02", "\x08\x03", "\x08\xff\xff\xff\xff\x0f",
                                            "\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                                            "\x0a\x00", "\x12\x7f", NULL };

static int control_setup(struct fuzz_corpus *seeds, const char *dir)
{
    seeds->dict = control_dict;
    struct fuzz_buf f = { 0 };
    for (int kind = 0; kind <= 4; kind++) {
        Ddtrain__ControlRequest req = DDTRAIN__CONTROL_REQUEST__INIT;
        uint8_t body[64];
        req.kind = (Ddtrain__ControlRequest__Kind)kind;
        size_t len = ddtrain__control_request__pack(&req, body);
        frame(&f, body, len);
        if (kind >= 1 && kind <= 3) /* the seeds are the valid requests */
            fuzz_corpus_add(seeds, f.p, f.n);
    }
    fuzz_buf_free(&f);
    char err[512];
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", run_dir);
    if (system(cmd) != 0 || control_start(&server, run_dir, err, sizeof err)) {
        fprintf(stderr, "fuzz: control: cannot start a server: %s\n", err);
        return -1;
    }
    server_up = 1;
    return 0;
}

static void control_teardown(void)
{
    if (server_up)
        control_stop(&server);
    server_up = 0;
}

/* What the server must answer to a frame, by the protocol (control.h). */
static enum expect expected(const uint8_t *p, size_t n)
{
    if (n < 4)
        return NO_REPLY;
    uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24;
    if (len > CONTROL_MAX_MESSAGE)
        return REPLY_ERROR;
    if (len > n - 4)
        return NO_REPLY;
    int kind;
    const char *why = NULL;
    if (control_decode_request(p + 4, len, &kind, &why) == 0)
        return kind >= 1 && kind <= 3 ? REPLY_OK : REPLY_ERROR;
    return why && why[0] ? REPLY_ERROR : NO_REPLY;
}

/* Reads until the server closes (or 10 s pass); returns the bytes read or -1. */
static long read_all(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 10000) <= 0)
            return -1;
        ssize_t k = read(fd, buf + got, cap - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || (got += (size_t)k) == cap)
            return k < 0 && errno != ECONNRESET ? -1 : (long)got;
    }
}

/* Sends the frame to the real server; returns its answer as an expect. */
static int ask_server(const uint8_t *p, size_t n, enum expect *answer)
{
    struct sockaddr_un sa;
    char err[512];
    if (control_socket_address(run_dir, -1, &sa, err, sizeof err))
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "fuzz: control: cannot connect: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* the server may stop reading early (a frame over the limit): fine */
    (void)!send(fd, p, n, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    uint8_t reply[4 + CONTROL_MAX_MESSAGE];
    long got = read_all(fd, reply, sizeof reply);
    close(fd);
    if (got < 0) {
        fprintf(stderr, "fuzz: control: the server did not answer or close\n");
        return -1;
    }
    *answer = NO_REPLY;
    if (got == 0)
        return 0;
    uint32_t len = got < 4 ? 0 : (uint32_t)reply[0] | (uint32_t)reply[1] << 8 |
                                      (uint32_t)reply[2] << 16 | (uint32_t)reply[3] << 24;
    Ddtrain__ControlReply *r = got >= 4 && len == (uint32_t)(got - 4)
                                   ? ddtrain__control_reply__unpack(NULL, len, reply + 4)
                                   : NULL;
    if (!r) {
        fprintf(stderr, "fuzz: control: the server's reply (%ld bytes) is not a framed ControlReply\n",
                got);
        return -1;
    }
    *answer = r->ok ? REPLY_OK : REPLY_ERROR;
    ddtrain__control_reply__free_unpacked(r, NULL);
    return 0;
}

static void control_mutate(struct fuzz_rng *r, const struct fuzz_corpus *seeds, struct fuzz_buf *out)
{
    const struct fuzz_buf *s = fuzz_pick(r, seeds);
    fuzz_buf_set(out, s->p, s->n);
    if (fuzz_below(r, 2)) {
        fuzz_mutate_buf(r, seeds, out);
        return;
    }
    /* the body mutated, the length made right */
    struct fuzz_buf body = { 0 };
    fuzz_buf_set(&body, s->p + 4, s->n - 4);
    fuzz_mutate_buf(r, seeds, &body);
    frame(out, body.p, body.n);
    fuzz_buf_free(&body);
}

static int control_run(const uint8_t *p, size_t n)
{
    enum expect want = expected(p, n), got;
    if (crc32(0L, p, (uInt)n) % 8 != 0)
        return want == REPLY_OK;
    if (ask_server(p, n, &got))
        return -1;
    if (got != want) {
        fprintf(stderr, "fuzz: control: the server answered %d to a frame that calls for %d (0 nothing, 1 an error, 2 ok)\n",
                (int)got, (int)want);
        return -1;
    }
    int checkpoint, stop;
    control_take(&server, &checkpoint, &stop);
    return want == REPLY_OK;
}

const struct fuzz_target fuzz_control_target = {
    .name = "control",
    .iters = 6000,
    .setup = control_setup,
    .mutate = control_mutate,
    .run = control_run,
    .teardown = control_teardown,
};
