/* metrics.jsonl: one JSON object per line, appended and flushed as it goes. */
#ifndef DDT_METRICS_H
#define DDT_METRICS_H

#include <stdio.h>

struct metrics {
    FILE *f;
    char path[4096];
};

/* Opens DIR/metrics.jsonl for appending. Returns 0 or -1 with err. */
int metrics_open(struct metrics *m, const char *dir, char *err, int errlen);
void metrics_close(struct metrics *m);

/* A training log line. */
void metrics_train(struct metrics *m, long step, double epoch, double lr, double momentum,
                   int batch, double loss, double acc, double samples_per_sec,
                   double grad_norm, double noise_scale);

/* An evaluation line. */
void metrics_eval(struct metrics *m, long step, double epoch, double train_loss,
                  double train_acc, double test_loss, double test_acc, double wall_seconds);

/* Prints a double as JSON (NaN and infinities become null). */
void metrics_json_number(FILE *f, double v);

#endif
