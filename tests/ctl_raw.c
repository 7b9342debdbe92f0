/* Test client for the control socket that sends what a well-behaved client
 * never would: ctl_raw SOCKET garbage|oversized|unknown|truncated|silent|
 * trickle-stop. Prints the reply's error text (or "no reply") and exits 0
 * when a reply came; "silent" says nothing and exits 0 once the server hangs
 * up on it (within 10 s), "trickle-stop" sends a stop one byte every 700 ms. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ddtrain.pb-c.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Says nothing; 0 when the server hangs up within 10 s. */
static int stay_silent(int fd)
{
    long t0 = now_ms();
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char byte;
    if (poll(&pfd, 1, 10000) == 1 && read(fd, &byte, 1) == 0) {
        printf("dropped after %ld ms\n", now_ms() - t0);
        return 0;
    }
    printf("not dropped\n");
    return 1;
}

/* Sends msg one byte every gap_ms, as long as the server lets it. */
static void trickle(int fd, const uint8_t *msg, size_t len, int gap_ms)
{
    for (size_t i = 0; i < len; i++) {
        if (send(fd, msg + i, 1, MSG_NOSIGNAL) != 1)
            return;
        if (i + 1 < len)
            poll(NULL, 0, gap_ms);
    }
}

static int print_reply(int fd)
{
    uint8_t head[4], body[4096];
    if (read(fd, head, 4) != 4) {
        printf("no reply\n");
        return 1;
    }
    uint32_t n = head[0] | head[1] << 8 | head[2] << 16 | (uint32_t)head[3] << 24;
    size_t got = 0;
    while (got < n && got < sizeof body) {
        ssize_t r = read(fd, body + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    Ddtrain__ControlReply *rep = ddtrain__control_reply__unpack(NULL, got, body);
    if (!rep) {
        printf("malformed reply\n");
        return 1;
    }
    printf("ok=%d error=%s\n", rep->ok, rep->error);
    ddtrain__control_reply__free_unpacked(rep, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ctl_raw SOCKET garbage|oversized|unknown|truncated|silent|trickle-stop\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    if (!strcmp(argv[2], "silent"))
        return stay_silent(fd);
    if (!strcmp(argv[2], "trickle-stop")) {
        trickle(fd, (const uint8_t *)"\x02\x00\x00\x00\x08\x03", 6, 700); /* kind = STOP */
        int rc = print_reply(fd);
        close(fd);
        return rc;
    }
    uint8_t msg[16];
    size_t len;
    if (!strcmp(argv[2], "garbage")) {
        memcpy(msg, "\x05\x00\x00\x00\xff\xff\xff\xff\xff", 9);
        len = 9;
    } else if (!strcmp(argv[2], "oversized")) {
        memcpy(msg, "\x00\x00\x10\x00", 4); /* 1 MiB announced */
        len = 4;
    } else if (!strcmp(argv[2], "unknown")) {
        memcpy(msg, "\x02\x00\x00\x00\x08\x07", 6); /* kind = 7 */
        len = 6;
    } else {
        memcpy(msg, "\x09\x00\x00\x00\x08", 5); /* announces 9, sends 1, hangs up */
        len = 5;
    }
    if (write(fd, msg, len) != (ssize_t)len) {
        perror("write");
        return 1;
    }
    if (!strcmp(argv[2], "truncated"))
        shutdown(fd, SHUT_WR);
    int rc = print_reply(fd);
    close(fd);
    return rc;
}
