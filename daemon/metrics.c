/* Writer of metrics.jsonl lines, and its repair on resume.
 *
 * Each line is formatted into a buffer and handed to write(2) whole: stdio
 * would keep a failed line in its buffer and write it (or part of it) later,
 * after lines that came next. Here the first failure is kept and ends the
 * writing, so the file holds complete lines and at most one torn line at
 * its end, which metrics_keep_until drops when the run is resumed. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"

int metrics_open(struct metrics *m, const char *dir, char *err, size_t errlen)
{
    snprintf(m->path, sizeof m->path, "%s/metrics.jsonl", dir);
    m->failed = 0;
    m->fd = open(m->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (m->fd < 0) {
        snprintf(err, errlen, "%s: %s", m->path, strerror(errno));
        return -1;
    }
    m->open = true;
    return 0;
}

void metrics_close(struct metrics *m)
{
    if (m->open)
        close(m->fd);
    m->open = false;
}

void metrics_json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

/* One line being formatted; far larger than any line we write. */
struct line {
    char text[1024];
    size_t len;
    bool over;
};

static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->text + l->len, sizeof l->text - l->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof l->text - l->len)
        l->over = true;
    else
        l->len += (size_t)n;
}

/* The same text as metrics_json_number. */
static void field(struct line *l, const char *name, double v)
{
    if (isfinite(v))
        put(l, ",\"%s\":%.9g", name, v);
    else
        put(l, ",\"%s\":null", name);
}

/* Appends the line with as many write(2) calls as it takes. */
static int write_line(struct metrics *m, const struct line *l)
{
    if (!m->open)
        return 0;
    if (m->failed)
        return -1;
    if (l->over) {
        m->failed = EOVERFLOW;
        return -1;
    }
    for (size_t done = 0; done < l->len;) {
        ssize_t n = write(m->fd, l->text + done, l->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            m->failed = n < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int metrics_train(struct metrics *m, long step, double epoch, double lr, double momentum,
                  int batch, double loss, double acc, double samples_per_sec,
                  double grad_norm, double noise_scale, const struct metrics_noise *x)
{
    struct line l = { .len = 0, .over = false };
    put(&l, "{\"kind\":\"train\",\"step\":%ld", step);
    field(&l, "epoch", epoch);
    field(&l, "lr", lr);
    field(&l, "momentum", momentum);
    put(&l, ",\"batch\":%d", batch);
    field(&l, "loss", loss);
    field(&l, "accuracy", acc);
    field(&l, "samples_per_sec", samples_per_sec);
    field(&l, "grad_norm", grad_norm);
    field(&l, "noise_scale", noise_scale);
    if (x) {
        field(&l, "noise_g2", x->g2);
        field(&l, "noise_trace", x->trace);
        put(&l, ",\"samples\":%lld", x->samples);
        if (x->adascale) {
            field(&l, "gain", x->gain);
            field(&l, "si_epoch", x->si_epoch);
        }
    }
    put(&l, "}\n");
    return write_line(m, &l);
}

int metrics_batch(struct metrics *m, long step, double epoch, const char *decision, int from,
                  int to, int target, double b_noise, double g2, double trace)
{
    struct line l = { .len = 0, .over = false };
    /* decision is our own text: nothing in it needs escaping */
    put(&l, "{\"kind\":\"batch\",\"step\":%ld", step);
    field(&l, "epoch", epoch);
    put(&l, ",\"decision\":\"%s\",\"from\":%d,\"to\":%d,\"target\":%d", decision, from, to,
        target);
    /* +inf (|G|^2 at or below 0 beside positive noise) is written as null
     * too, told apart from "no estimate" by noise_unbounded */
    field(&l, "noise_scale", b_noise);
    if (isinf(b_noise) && b_noise > 0)
        put(&l, ",\"noise_unbounded\":true");
    field(&l, "noise_g2", g2);
    field(&l, "noise_trace", trace);
    put(&l, "}\n");
    return write_line(m, &l);
}

int metrics_start(struct metrics *m, const char *reason)
{
    struct line l = { .len = 0, .over = false };
    /* reason is our own text: nothing in it needs escaping */
    put(&l, "{\"kind\":\"start\",\"step\":0,\"resume\":\"auto\",\"reason\":\"%s\"}\n", reason);
    return write_line(m, &l);
}

int metrics_eval(struct metrics *m, long step, double epoch, double train_loss,
                 double train_acc, double val_loss, double val_acc, double test_loss,
                 double test_acc, double wall_seconds)
{
    struct line l = { .len = 0, .over = false };
    put(&l, "{\"kind\":\"eval\",\"step\":%ld", step);
    field(&l, "epoch", epoch);
    field(&l, "train_loss", train_loss);
    field(&l, "train_accuracy", train_acc);
    if (!isnan(val_loss)) {
        field(&l, "val_loss", val_loss);
        field(&l, "val_accuracy", val_acc);
    }
    field(&l, "test_loss", test_loss);
    field(&l, "test_accuracy", test_acc);
    field(&l, "generalization_gap", test_loss - train_loss);
    field(&l, "wall_seconds", wall_seconds);
    put(&l, "}\n");
    return write_line(m, &l);
}

int metrics_early_stop(struct metrics *m, long step, const char *metric, double best,
                       long best_step, double best_epoch, int patience, int evals_since_best)
{
    struct line l = { .len = 0, .over = false };
    /* metric is our own name: nothing in it needs escaping */
    put(&l, "{\"kind\":\"early_stop\",\"step\":%ld,\"metric\":\"%s\"", step, metric);
    field(&l, "best", best);
    put(&l, ",\"best_step\":%ld", best_step);
    field(&l, "best_epoch", best_epoch);
    put(&l, ",\"patience\":%d,\"evals_since_best\":%d}\n", patience, evals_since_best);
    return write_line(m, &l);
}

void metrics_error(const struct metrics *m, char *err, size_t errlen)
{
    snprintf(err, errlen, "cannot append to %s: %s", m->path,
             m->failed == EOVERFLOW ? "a line too long to format" : strerror(m->failed));
}

int metrics_keep_until(const char *path, long long step, size_t *torn, char *err, size_t errlen)
{
    *torn = 0;
    FILE *in = fopen(path, "r");
    if (!in) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL, *line = NULL;
    size_t len = 0, cap = 0;
    ssize_t n;
    FILE *out = open_memstream(&text, &len);
    while (out && (n = getline(&line, &cap, in)) > 0) {
        if (line[n - 1] != '\n') {
            /* only the last line can lack its newline */
            *torn = (size_t)n;
            break;
        }
        const char *p = strstr(line, "\"step\":");
        if (p && strtoll(p + 7, NULL, 10) > step)
            continue;
        fputs(line, out);
    }
    int read_failed = ferror(in);
    free(line);
    fclose(in);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fclose(out);
    int rc = -1;
    if (read_failed)
        snprintf(err, errlen, "cannot read %s", path);
    else
        rc = fs_write_atomic(path, text, len, err, errlen);
    free(text);
    return rc;
}
