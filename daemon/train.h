/* `ddtrain train`: the options and the training loop every rank runs. */
#ifndef DDT_TRAIN_H
#define DDT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "augment.h"
#include "config.h"
#include "dataset.h"
#include "model.h"
#include "optim.h"
#include "schedule.h"

/* What `ddtrain train` is told. The option table writes straight into the
 * structs the engine and the schedule read: model_opts, sched and optim are
 * handed on as they are, so every option has one home. */
struct train_config {
    char run_dir[CONFIG_STRLEN];
    char data[CONFIG_STRLEN];
    char test_data[CONFIG_STRLEN]; /* a test set named apart ("": --data's test split) */
    int classes;             /* 0: the data set's (dataset_default_classes), set by train_setup */
    enum dataset_label label; /* --label: CIFAR-100's fine or coarse label */
    char augment[CONFIG_STRLEN];
    struct augment aug;      /* not an option: --augment parsed by train_setup */
    int train_samples;       /* 0: all */
    int test_samples;        /* 0: all */
    int eval_train_samples;  /* 0: all */
    double val_fraction;     /* share of the training rows held out for validation */
    char val_data[CONFIG_STRLEN]; /* or a separate validation set ("": none) */
    char model[CONFIG_STRLEN];
    bool bn;
    double dropout;
    struct model_options model_opts; /* --bn-group, --bn-momentum, --bn-eps */
    /* --epochs, --batch-size, --lr and the rest of the schedule; its lists
     * are parsed from the two texts below (train_build_schedule) */
    struct sched_config sched;
    char batch_schedule[CONFIG_STRLEN];
    char lr_milestones[CONFIG_STRLEN];
    /* --optimizer, --nesterov, --beta2, --adam-eps, --weight-decay, --wd-*,
     * --trust-coef (--momentum, Adam's beta1, is the schedule's) */
    struct optim_config optim;
    uint64_t seed;
    double clip_norm;        /* global-norm clipping of the mean gradient (0: off) */
    double label_smoothing;  /* cross-entropy target smoothing (0: off) */
    int accumulate;          /* micro-batches per optimizer step (1: none) */
    int init;                /* --init: enum model_init (he, lecun, torch) */
    int eval_every;          /* epochs */
    int log_every;           /* steps */
    int threads;             /* OpenBLAS threads per rank */
    int bucket_kb;
    bool overlap;
    bool shard_optimizer;
    bool shared_memory;
    int local_steps;         /* local SGD: steps between averages (0: off, data-parallel) */
    int local_steps_after;   /* post-local SGD: data-parallel epochs before the local ones */
    bool local_average_optimizer; /* average the optimizer state too */
    int check_every;         /* replica checksum every K steps */
    double stall_timeout;    /* seconds a wait on other ranks may last at least; 0: forever */
    bool noise_scale;
    int noise_every;         /* steps between noise-scale measurements */
    double noise_ema;
    int noise_average;       /* NOISE_AVERAGE_WINDOW or NOISE_AVERAGE_EMA */
    int noise_window;        /* training samples (0: one epoch) */
    int batch_auto;          /* --batch-auto: the largest batch (0: a fixed batch) */
    int max_steps;           /* 0: no limit (for tests and benchmarks) */
    char resume[CONFIG_STRLEN];    /* "", "auto" or a checkpoint path */
    bool extend;             /* --resume may change --epochs of a length-shaped decay;
                                never carried over from the resumed run */
    char init_from[CONFIG_STRLEN]; /* fine-tuning: weights from this checkpoint */
    bool reset_head;
    int freeze_layers;
    double layer_lr_decay;
    int ckpt_every;          /* steps, 0: off */
    int ckpt_every_epochs;   /* epochs, 0: off */
    int ckpt_keep;
    int early_stop;          /* evaluations without improvement before stopping; 0: off */
    int early_stop_metric;   /* EARLY_STOP_LOSS or EARLY_STOP_ACCURACY */
    bool keep_best;          /* write RUN/checkpoints/best.ckpt at each improvement */
    bool ckpt_at_end;
    bool stop_on_divergence;
    bool quiet;
};

/* How the noise scale averages its measurements (noise.h). */
enum { NOISE_AVERAGE_WINDOW = 0, NOISE_AVERAGE_EMA = 1 };

/* What --early-stop and --keep-best watch (of the validation set, else the test set). */
enum { EARLY_STOP_LOSS = 0, EARLY_STOP_ACCURACY = 1 };

extern const struct option_def train_options[];
/* The topics of `ddtrain train --help` and its man page; an option no group
 * names is shown last, under "other". */
extern const struct option_group train_option_groups[];

/* Every option at its default, and what no option sets at its fixed value;
 * the schedule's lists stay empty until train_build_schedule parses them. */
void train_config_defaults(struct train_config *c);

/* Runs `ddtrain train` on this rank after MPI_Init. Returns the exit status. */
int train_main(int argc, char **argv, int first);

#endif
