/* `ddtrain train`: the options and the training loop every rank runs. */
#ifndef DDT_TRAIN_H
#define DDT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct train_config {
    char run_dir[CONFIG_STRLEN];
    char data[CONFIG_STRLEN];
    int classes;
    int train_samples;       /* 0: all */
    int test_samples;        /* 0: all */
    int eval_train_samples;  /* 0: all */
    char model[CONFIG_STRLEN];
    bool bn;
    double dropout;
    int bn_group;
    double bn_momentum, bn_eps;
    int epochs;
    int batch_size;
    char batch_schedule[CONFIG_STRLEN];
    bool batch_scales_lr;
    int optimizer;           /* enum optim_kind */
    double lr;
    int lr_scaling;          /* enum lr_scaling */
    int ref_batch;
    double warmup_epochs;
    int warmup_steps;
    double warmup_start;
    int lr_decay;            /* enum lr_decay */
    double lr_gamma;
    char lr_milestones[CONFIG_STRLEN];
    double lr_power, lr_floor;
    double sgdr_t0, sgdr_tmult, cycle_epochs;
    double onecycle_pct, onecycle_div, onecycle_final_div;
    double momentum, momentum_min;
    bool nesterov;
    double beta2, adam_eps;
    double weight_decay;
    int wd_mode;             /* enum wd_mode */
    bool wd_exempt_bn_bias;
    double trust_coef;
    uint64_t seed;
    int eval_every;          /* epochs */
    int log_every;           /* steps */
    int threads;             /* OpenBLAS threads per rank */
    int bucket_kb;
    bool overlap;
    bool shard_optimizer;
    bool shared_memory;
    int check_every;         /* replica checksum every K steps */
    bool noise_scale;
    int noise_every;         /* steps between noise-scale measurements */
    double noise_ema;
    int max_steps;           /* 0: no limit (for tests and benchmarks) */
    char resume[CONFIG_STRLEN];    /* "", "auto" or a checkpoint path */
    char init_from[CONFIG_STRLEN]; /* fine-tuning: weights from this checkpoint */
    bool reset_head;
    int freeze_layers;
    double layer_lr_decay;
    int ckpt_every;          /* steps, 0: off */
    int ckpt_every_epochs;   /* epochs, 0: off */
    int ckpt_keep;
    bool ckpt_at_end;
    bool stop_on_divergence;
    bool quiet;
};

extern const struct option_def train_options[];

/* Runs `ddtrain train` on this rank after MPI_Init. Returns the exit status. */
int train_main(int argc, char **argv, int first);

#endif
