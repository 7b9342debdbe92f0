/* The coordinator's schedule: learning rate = base x scaling rule x warm-up x
 * decay, momentum (cycled by one-cycle), and the global batch size, all as
 * pure functions of the position in training. Time is measured in epochs as
 * a real number (epoch + fraction of it done), so batch-size changes do not
 * distort decay. */
#ifndef DDT_SCHEDULE_H
#define DDT_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>

/* SCALE_ADASCALE: the trainer multiplies the rate by AdaScale's gain
 * (adascale.h) and runs the schedule on its scale-invariant clock; the
 * schedule's own factor is then 1. */
enum lr_scaling { SCALE_NONE = 1, SCALE_LINEAR, SCALE_SQRT, SCALE_ADASCALE };

enum lr_decay {
    DECAY_CONSTANT = 1,
    DECAY_STEP,       /* multiply by gamma at each milestone epoch */
    DECAY_EXP,        /* gamma ^ epoch */
    DECAY_POLY,       /* (1 - t/T) ^ power, down to the floor */
    DECAY_COSINE,     /* floor + (1 - floor)(1 + cos(pi t/T))/2 */
    DECAY_SGDR,       /* cosine with warm restarts: period T0, then T0*Tmult, ... */
    DECAY_CYCLIC,     /* triangular between floor and 1, half period cycle_epochs */
    DECAY_ONECYCLE,   /* Smith 2018: up from 1/div over pct_start, cosine down to
                         1/(div*final_div); momentum cycled the other way */
};

#define SCHED_MAX_MILESTONES 16
/* Room for the batch changes --batch-auto writes (doublings from 1 up to the
 * largest batch, and the cap); --batch-schedule still takes at most
 * SCHED_MAX_MILESTONES. */
#define SCHED_MAX_BATCH_CHANGES 32

/* Written by the option table of `ddtrain train` (daemon/train_options.c),
 * which holds the defaults and the bounds of every field an option sets;
 * the lists are filled by the parsers below. */
struct sched_config {
    double base_lr;           /* the rate at the reference batch */
    enum lr_scaling scaling;
    int ref_batch;            /* reference batch for scaling (256) */
    int epochs;               /* length of training, T */

    double warmup_epochs;     /* linear warm-up length in epochs ... */
    int warmup_steps;         /* ... or in steps (used when > 0) */
    double warmup_start;      /* start factor relative to the scaled rate;
                                 < 0 means "the unscaled rate" (1 / scale) */
    double warmup_steps_end;  /* not an option: the epoch position of step
                                 warmup_steps, set by sched_set_warmup_steps_end
                                 (it needs the steps per epoch); read only when
                                 warmup_steps > 0 */

    enum lr_decay decay;
    double gamma;             /* step, exponential */
    int nmilestones;
    double milestones[SCHED_MAX_MILESTONES]; /* epochs, increasing */
    double power;             /* polynomial */
    double floor;             /* cosine/poly/cyclic/SGDR lower end, as a fraction of the peak */
    double sgdr_t0, sgdr_tmult;
    double cycle_epochs;      /* cyclic: half period (Smith's step size) in epochs */
    double onecycle_pct, onecycle_div, onecycle_final_div;

    double momentum;          /* SGD/LARS momentum or Adam beta1 */
    double momentum_min;      /* one-cycle: momentum at the peak rate */

    /* batch-size schedule: from epoch batch_epochs[i] on, the global batch is
     * batch_sizes[i]; before the first milestone it is base_batch */
    int base_batch;
    int nbatch;
    double batch_epochs[SCHED_MAX_BATCH_CHANGES];
    int batch_sizes[SCHED_MAX_BATCH_CHANGES];
    bool batch_scales_lr;     /* follow the scaling rule when the batch grows (else the
                                 rate stays as at base_batch) */
};

/* Checks what the option table cannot: the fields against each other and
 * the parsed lists (the table has checked each option's own bounds). Fills
 * err and returns -1 on a contradiction. */
int sched_validate(const struct sched_config *c, char *err, size_t errlen);

/* Global batch size in force at epoch t. */
int sched_batch_at(const struct sched_config *c, double t);

/* Multiplier of the scaling rule for a global batch B. */
double sched_scale(const struct sched_config *c, int B);

/* Warm-up factor (start..1) at epoch t / step. */
double sched_warmup_factor(const struct sched_config *c, double t, long step);

/* The epoch at which the warm-up ends (0 without one): the decay's time
 * and horizon start there, so that the end of warm-up is the peak. */
double sched_warmup_end(const struct sched_config *c);

/* Sets warmup_steps_end from the number of steps of each epoch (steps_in(e,
 * user) for epoch e), walking the epochs as the trainer does. */
void sched_set_warmup_steps_end(struct sched_config *c, long (*steps_in)(long e, void *user),
                                void *user);

/* Decay multiplier (peak 1) at epoch t: every kind but step runs on the
 * time since the warm-up ended, over the rest of training; step decay's
 * milestones are absolute epochs. */
double sched_decay_factor(const struct sched_config *c, double t);

/* The learning rate at epoch t and global step `step`. */
double sched_lr_at(const struct sched_config *c, double t, long step);

/* Does the rate's shape depend on the length of training (--epochs)? True
 * for poly, cosine and one-cycle, whose horizon ends with training. */
bool sched_shape_needs_length(const struct sched_config *c);

/* The decay kind's option value ("cosine"). */
const char *sched_decay_name(enum lr_decay d);

/* The momentum (or beta1) at epoch t. */
double sched_momentum_at(const struct sched_config *c, double t);

/* Parses "E:B,E:B" (epoch:batch) and "E,E,E" (milestones) lists. */
int sched_parse_batch_list(struct sched_config *c, const char *text, char *err, size_t errlen);
int sched_parse_milestones(struct sched_config *c, const char *text, char *err, size_t errlen);

#endif
