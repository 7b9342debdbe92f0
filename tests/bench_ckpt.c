/* `make bench`, checkpoints: writing a 10M-parameter checkpoint (parameters
 * plus one optimizer moment) against a plain sequential write of the same
 * bytes with fsync to the same disk, and reading it back (what resume does). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double plain_write(const char *path, const void *buf, size_t len)
{
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        size_t chunk = left > (1u << 20) ? (1u << 20) : left;
        ssize_t w = write(fd, p, chunk);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        p += w;
        left -= (size_t)w;
    }
    fsync(fd);
    close(fd);
    return now() - t0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    const size_t n = 10 * 1000 * 1000, per = n / 10;
    float *w = malloc(n * sizeof *w), *m = malloc(n * sizeof *m);
    for (size_t i = 0; i < n; i++) {
        w[i] = (float)((i * 2654435761u) % 1000003) * 1e-6f;
        m[i] = w[i] * 0.5f;
    }
    Ddtrain__Tensor t[20], *params[10], *moments[10];
    uint32_t shapes[20][2];
    char names[20][32];
    for (int k = 0; k < 10; k++) {
        snprintf(names[k], sizeof names[k], "fc%d.weight", k + 1);
        snprintf(names[10 + k], sizeof names[k], "fc%d.weight.m", k + 1);
        ckpt_tensor_view(&t[k], shapes[k], names[k], w + k * per, per, 1000, 1000);
        ckpt_tensor_view(&t[10 + k], shapes[10 + k], names[10 + k], m + k * per, per, 1000, 1000);
        params[k] = &t[k];
        moments[k] = &t[10 + k];
    }
    Ddtrain__ScheduleState s = DDTRAIN__SCHEDULE_STATE__INIT;
    Ddtrain__Checkpoint msg = DDTRAIN__CHECKPOINT__INIT;
    msg.format_version = 1;
    msg.schedule = &s;
    msg.model_spec = "bench";
    msg.n_params = 10;
    msg.params = params;
    msg.n_optimizer = 10;
    msg.optimizer = moments;

    char ckpt[4096], plain[4096], err[DDT_ERRLEN];
    snprintf(ckpt, sizeof ckpt, "%s/bench.ckpt", dir);
    snprintf(plain, sizeof plain, "%s/bench.plain", dir);
    size_t bytes = ddtrain__checkpoint__get_packed_size(&msg) + CKPT_HEADER_BYTES + 4;
    void *buf = malloc(bytes);
    memset(buf, 0x5a, bytes);
    double best_ckpt = 1e30, best_plain = 1e30, best_read = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double tp = plain_write(plain, buf, bytes);
        double t0 = now();
        if (ckpt_write_file(ckpt, &msg, err, sizeof err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        double tc = now() - t0;
        best_plain = tp < best_plain ? tp : best_plain;
        best_ckpt = tc < best_ckpt ? tc : best_ckpt;
        t0 = now();
        Ddtrain__Checkpoint *back;
        if (ckpt_read_file(ckpt, &back, err, sizeof err)) {
            fprintf(stderr, "bench: %s\n", err);
            return 1;
        }
        /* what resume does next: copy every tensor into the arena */
        for (size_t k = 0; k < back->n_params; k++)
            memcpy(w + k * per, back->params[k]->data, per * sizeof(float));
        for (size_t k = 0; k < back->n_optimizer; k++)
            memcpy(m + k * per, back->optimizer[k]->data, per * sizeof(float));
        ckpt_free(back);
        double tr = now() - t0;
        best_read = tr < best_read ? tr : best_read;
    }
    unlink(ckpt);
    unlink(plain);
    double mb = (double)bytes / 1e6;
    printf("checkpoint of 10M parameters + 10M moments: %.1f MB\n", mb);
    printf("  plain write+fsync   %7.3f s  %7.1f MB/s\n", best_plain, mb / best_plain);
    printf("  checkpoint write    %7.3f s  %7.1f MB/s   ratio to plain %.2f (target >= 0.5)\n",
           best_ckpt, mb / best_ckpt, best_plain / best_ckpt);
    printf("  read + restore      %7.3f s  (target < 1 s)\n", best_read);
    free(buf);
    free(w);
    free(m);
    return 0;
}
