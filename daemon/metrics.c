/* Writer of metrics.jsonl lines. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int metrics_open(struct metrics *m, const char *dir, char *err, int errlen)
{
    snprintf(m->path, sizeof m->path, "%s/metrics.jsonl", dir);
    m->f = fopen(m->path, "a");
    if (!m->f) {
        snprintf(err, errlen, "%s: %s", m->path, strerror(errno));
        return -1;
    }
    return 0;
}

void metrics_close(struct metrics *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
}

void metrics_json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

static void field(FILE *f, const char *name, double v)
{
    fprintf(f, ",\"%s\":", name);
    metrics_json_number(f, v);
}

void metrics_train(struct metrics *m, long step, double epoch, double lr, double momentum,
                   int batch, double loss, double acc, double samples_per_sec,
                   double grad_norm, double noise_scale)
{
    if (!m->f)
        return;
    fprintf(m->f, "{\"kind\":\"train\",\"step\":%ld", step);
    field(m->f, "epoch", epoch);
    field(m->f, "lr", lr);
    field(m->f, "momentum", momentum);
    fprintf(m->f, ",\"batch\":%d", batch);
    field(m->f, "loss", loss);
    field(m->f, "accuracy", acc);
    field(m->f, "samples_per_sec", samples_per_sec);
    field(m->f, "grad_norm", grad_norm);
    field(m->f, "noise_scale", noise_scale);
    fputs("}\n", m->f);
    fflush(m->f);
}

void metrics_eval(struct metrics *m, long step, double epoch, double train_loss,
                  double train_acc, double test_loss, double test_acc, double wall_seconds)
{
    if (!m->f)
        return;
    fprintf(m->f, "{\"kind\":\"eval\",\"step\":%ld", step);
    field(m->f, "epoch", epoch);
    field(m->f, "train_loss", train_loss);
    field(m->f, "train_accuracy", train_acc);
    field(m->f, "test_loss", test_loss);
    field(m->f, "test_accuracy", test_acc);
    field(m->f, "generalization_gap", test_loss - train_loss);
    field(m->f, "wall_seconds", wall_seconds);
    fputs("}\n", m->f);
    fflush(m->f);
}
