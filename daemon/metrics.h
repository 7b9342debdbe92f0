/* metrics.jsonl: one JSON object per line, each line one write(2) as it
 * goes; a failed write is kept, reported once, and ends the writing. */
#ifndef DDT_METRICS_H
#define DDT_METRICS_H

#include <stdbool.h>
#include <stdio.h>

struct metrics {
    bool open;
    int fd;
    int failed;              /* errno of the first failed write, 0 while none */
    char path[4096];
};

/* Opens DIR/metrics.jsonl for appending. Returns 0 or -1 with err. */
int metrics_open(struct metrics *m, const char *dir, char *err, size_t errlen);
void metrics_close(struct metrics *m);

/* A training log line. Returns 0, or -1 when the line could not be written
 * whole (see metrics_error); after a failure nothing more is written, so
 * that at most the last line of the file is torn. */
struct metrics_noise;
int metrics_train(struct metrics *m, long step, double epoch, double lr, double momentum,
                  int batch, double loss, double acc, double samples_per_sec,
                  double grad_norm, double noise_scale, const struct metrics_noise *x);

/* What a train line adds after noise_scale (the smoothed B_simple): the
 * newest measurement's unsmoothed estimates "noise_g2" (|G|^2) and
 * "noise_trace" (tr(Sigma)), the training "samples" seen so far, and with
 * AdaScale (adascale set) its "gain" and the schedule's scale-invariant
 * "si_epoch". */
struct metrics_noise {
    double g2, trace;
    long long samples;
    bool adascale;
    double gain, si_epoch;
};

/* A --batch-auto decision at an epoch start: {"kind":"batch","step":S,
 * "epoch":E,"decision":WHY,"from":A,"to":B,"target":T,"noise_scale":...,
 * "noise_g2":...,"noise_trace":...}, S the first step that runs on it;
 * the noise figures are the smoothed ones the decision read. Returns as
 * metrics_train. */
int metrics_batch(struct metrics *m, long step, double epoch, const char *decision, int from,
                  int to, int target, double b_noise, double g2, double trace);

/* An evaluation line; returns as metrics_train. val_loss and val_acc are
 * the validation set's, NaN when the run has none (then not written). */
int metrics_eval(struct metrics *m, long step, double epoch, double train_loss,
                 double train_acc, double val_loss, double val_acc, double test_loss,
                 double test_acc, double wall_seconds);

/* The line a run that starts from step 0 under --resume auto writes first,
 * {"kind":"start","step":0,"resume":"auto","reason":REASON}: nothing was
 * resumed, so a reader can tell a requeued fresh start from a continuation.
 * Returns as metrics_train. */
int metrics_start(struct metrics *m, const char *reason);

/* The line --early-stop writes when its patience runs out:
 * {"kind":"early_stop","step":S,"metric":NAME,"best":V,"best_step":B,
 * "best_epoch":E,"patience":P,"evals_since_best":N}. Returns as
 * metrics_train. */
int metrics_early_stop(struct metrics *m, long step, const char *metric, double best,
                       long best_step, double best_epoch, int patience, int evals_since_best);

/* What the first failed write was: "cannot append to PATH: strerror". */
void metrics_error(const struct metrics *m, char *err, size_t errlen);

/* Cuts the metrics file at path back to the lines of steps up to `step` (what
 * a resumed run writes again must not appear twice) and drops a torn last
 * line (one without its newline, left by a write that failed or was cut
 * short). Replaces the file atomically; a missing file is fine. *torn gets
 * the bytes of the torn line dropped (0: none). Returns 0 or -1 with err. */
int metrics_keep_until(const char *path, long long step, size_t *torn, char *err, size_t errlen);

/* Prints a double as JSON (NaN and infinities become null). */
void metrics_json_number(FILE *f, double v);

#endif
