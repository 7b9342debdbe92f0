/* Progress on stderr: one updating line on a terminal, a plain line per log
 * interval otherwise, with samples/s and an ETA. */
#ifndef DDT_PROGRESS_H
#define DDT_PROGRESS_H

#include <stdbool.h>

struct progress {
    bool tty;
    bool line_open; /* an updating line is on screen and needs a newline */
};

void progress_init(struct progress *p);

/* One step's line; batch > 0 shows the global batch (runs whose batch
 * changes), 0 leaves it out; a finite gain (AdaScale's) is shown, NaN not. */
void progress_step(struct progress *p, long step, long total_steps, double epoch, int epochs,
                   double loss, double acc, double lr, int batch, double samples_per_sec,
                   double eta_seconds, double noise_scale, double gain);

/* A line that stays: evaluation results, messages. */
void progress_line(struct progress *p, const char *text);

/* Formats seconds as 1h02m03s / 2m03s / 3s. */
void progress_format_duration(double seconds, char *out, int outlen);

#endif
