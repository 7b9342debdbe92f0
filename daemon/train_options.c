/* The option table of `ddtrain train`: names, bounds, defaults and help, the
 * one place each of them is written. Rows target the fields of the
 * schedule's, the optimizer's and the model's own structs inside struct
 * train_config, so nothing is copied between option and engine structs. */
#include <stddef.h>
#include <string.h>

#include "model_init.h"
#include "optim.h"
#include "schedule.h"
#include "train.h"

#define F(field) offsetof(struct train_config, field)


/* The topics of --help, each option once; a row added to the table above
 * without a place here shows under "other" until it gets one. */
const struct option_group train_option_groups[] = {
    { "data", "data test-data classes label augment train-samples test-samples eval-train-samples "
              "val-fraction val-data" },
    { "model", "model bn dropout bn-group bn-momentum bn-eps init init-from reset-head freeze-layers "
               "layer-lr-decay label-smoothing" },
    { "optimizer", "optimizer lr momentum nesterov beta2 adam-eps weight-decay wd-mode "
                   "wd-exempt-bn-bias trust-coef clip-norm" },
    { "schedule", "epochs max-steps batch-size batch-auto batch-schedule batch-scales-lr lr-scaling ref-batch "
                  "warmup-epochs warmup-steps warmup-start lr-decay lr-gamma lr-milestones "
                  "lr-power lr-floor sgdr-t0 sgdr-tmult cycle-epochs onecycle-pct onecycle-div "
                  "onecycle-final-div momentum-min seed early-stop early-stop-metric "
                  "stop-on-divergence" },
    { "parallelism", "threads bucket-kb overlap shard-optimizer shared-memory check-every "
                     "stall-timeout accumulate local-steps local-steps-after "
                     "local-average-optimizer" },
    { "checkpoints", "resume extend ckpt-every ckpt-every-epochs ckpt-keep keep-best ckpt-at-end" },
    { "output", "run-dir eval-every log-every noise-scale noise-every noise-average noise-window "
                "noise-ema quiet" },
    { NULL, NULL },
};

/* OPT_ENUM writes its field as an int: the enum-typed fields must be ints */
_Static_assert(sizeof(enum optim_kind) == sizeof(int), "enum optim_kind is not an int");
_Static_assert(sizeof(enum wd_mode) == sizeof(int), "enum wd_mode is not an int");
_Static_assert(sizeof(enum lr_scaling) == sizeof(int), "enum lr_scaling is not an int");
_Static_assert(sizeof(enum lr_decay) == sizeof(int), "enum lr_decay is not an int");
_Static_assert(sizeof(enum dataset_label) == sizeof(int), "enum dataset_label is not an int");

static const struct enum_name watched[] = {
    { "loss", EARLY_STOP_LOSS }, { "accuracy", EARLY_STOP_ACCURACY }, { NULL, 0 },
};
static const struct enum_name inits[] = {
    { "he", INIT_HE }, { "lecun", INIT_LECUN }, { "torch", INIT_TORCH }, { NULL, 0 },
};
static const struct enum_name labels[] = {
    { "fine", LABEL_FINE }, { "coarse", LABEL_COARSE }, { NULL, 0 },
};
static const struct enum_name optimizers[] = {
    { "sgd", OPTIM_SGD }, { "adam", OPTIM_ADAM }, { "adamw", OPTIM_ADAMW },
    { "lars", OPTIM_LARS }, { "lamb", OPTIM_LAMB }, { NULL, 0 },
};
static const struct enum_name wd_modes[] = {
    { "l2", WD_L2 }, { "decoupled", WD_DECOUPLED }, { NULL, 0 },
};
static const struct enum_name scalings[] = {
    { "none", SCALE_NONE }, { "linear", SCALE_LINEAR }, { "sqrt", SCALE_SQRT },
    { "adascale", SCALE_ADASCALE }, { NULL, 0 },
};
static const struct enum_name noise_averages[] = {
    { "window", NOISE_AVERAGE_WINDOW }, { "ema", NOISE_AVERAGE_EMA }, { NULL, 0 },
};
static const struct enum_name decays[] = {
    { "constant", DECAY_CONSTANT }, { "step", DECAY_STEP }, { "exp", DECAY_EXP },
    { "poly", DECAY_POLY }, { "cosine", DECAY_COSINE }, { "sgdr", DECAY_SGDR },
    { "cyclic", DECAY_CYCLIC }, { "onecycle", DECAY_ONECYCLE }, { NULL, 0 },
};

#define BIG 2147483647.0

const struct option_def train_options[] = {
    { "run-dir", OPT_STRING, F(run_dir), 1, 0, "runs/default", NULL, 0,
      "run directory: effective config, metrics.jsonl, checkpoints, control socket" },
    { "data", OPT_STRING, F(data), 1, 0, "fashion-mnist", NULL, OPTF_MATH,
      "fashion-mnist, a folder with the four IDX files, a train .csv (label first), or cifar10:DIR / cifar100:DIR (a folder of the binary version's .bin files)" },
    { "test-data", OPT_STRING, F(test_data), 0, 0, "", NULL, OPTF_MATH,
      "the test set, when --data's test split is not the one: a .csv file as it is (a train .csv's test file is otherwise its name with 'train' replaced by 'test'), or another --data value's test split" },
    { "classes", OPT_INT, F(classes), 0, 65536, "0", NULL, OPTF_MATH,
      "number of classes (0: the data set's: 100 for cifar100, 20 with --label coarse, else 10)" },
    { "label", OPT_ENUM, F(label), 0, 0, "fine", labels, OPTF_MATH,
      "cifar100: train on the fine (100 classes) or the coarse (20 superclasses) labels" },
    { "augment", OPT_STRING, F(augment), 1, 0, "none", NULL, OPTF_MATH,
      "training images only: none, or crop:P (random crop after zero padding of P pixels) and/or flip (horizontal, probability 1/2), e.g. crop:4,flip" },
    { "train-samples", OPT_INT, F(train_samples), 0, BIG, "0", NULL, OPTF_MATH,
      "use only the first N training samples (0: all)" },
    { "test-samples", OPT_INT, F(test_samples), 0, BIG, "0", NULL, 0,
      "evaluate on the first N test samples (0: all)" },
    { "eval-train-samples", OPT_INT, F(eval_train_samples), 0, BIG, "0", NULL, 0,
      "training samples used for the train loss of an evaluation (0: all)" },
    { "val-fraction", OPT_DOUBLE, F(val_fraction), 0, 0.99, "0", NULL, OPTF_MATH,
      "hold out round(F x N) training samples, drawn from the seed alone, for validation: they are not trained on, and evaluations report val_loss/val_accuracy (0: none)" },
    { "val-data", OPT_STRING, F(val_data), 0, 0, "", NULL, OPTF_MATH,
      "a separate validation set, in any --data format (its training split; a .csv: that file)" },
    { "model", OPT_STRING, F(model), 1, 0, "784-1024-1024-10", NULL, OPTF_MATH,
      "model spec: an MLP 784-1024-1024-10, a layer list in:784,fc:256,bn,relu,fc:10, or a named model (--model list)" },
    { "bn", OPT_BOOL, F(bn), 0, 0, "true", NULL, OPTF_MATH,
      "batch norm after every hidden layer of an MLP spec" },
    { "dropout", OPT_DOUBLE, F(dropout), 0, 0.99, "0", NULL, OPTF_MATH,
      "dropout after every hidden ReLU of an MLP spec" },
    { "init", OPT_ENUM, F(init), 0, 0, "he", inits, OPTF_MATH,
      "initial weights (drawn from --seed): he = normal, std sqrt(2/fan_in) before a ReLU and sqrt(1/fan_in) for the output layer, biases 0; lecun = normal, std 1/sqrt(fan_in), biases 0; torch = PyTorch's Linear/Conv2d default, weights and biases uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]; fan_in = inputs of a fc, in_channels x k x k of a conv; batch norm gamma 1, beta 0 in all" },
    { "bn-group", OPT_INT, F(model_opts.bn_group), 0, BIG, "0", NULL, OPTF_MATH,
      "ghost batch norm: statistics over groups of G samples of a rank's slice (0: the slice)" },
    { "bn-momentum", OPT_DOUBLE, F(model_opts.bn_momentum), 0, 1, "0.1", NULL,
      OPTF_MATH | OPTF_POSITIVE,
      "weight of the batch statistics in the running statistics" },
    { "bn-eps", OPT_DOUBLE, F(model_opts.bn_eps), 0, 1, "1e-5", NULL, OPTF_MATH | OPTF_POSITIVE,
      "batch-norm epsilon" },
    { "epochs", OPT_INT, F(sched.epochs), 1, 100000, "10", NULL, 0, "epochs to train" },
    { "batch-size", OPT_INT, F(sched.base_batch), 1, 16777216, "256", NULL, OPTF_MATH,
      "global batch size (split across ranks)" },
    { "batch-schedule", OPT_STRING, F(batch_schedule), 0, 0, "", NULL, OPTF_MATH,
      "batch-size milestones EPOCH:BATCH,... (e.g. 5:512,10:1024)" },
    { "batch-scales-lr", OPT_BOOL, F(sched.batch_scales_lr), 0, 0, "true", NULL, OPTF_MATH,
      "when the batch schedule grows the batch, apply the scaling rule to the rate" },
    { "batch-auto", OPT_INT, F(batch_auto), 0, 16777216, "0", NULL, OPTF_MATH,
      "grow the global batch with the gradient noise scale, from --batch-size up to this many samples (0: a fixed batch): at each epoch start it doubles while the smoothed B_noise is at least the doubled batch, rounded to the ranks x --bn-group x --accumulate, never shrinking" },
    { "optimizer", OPT_ENUM, F(optim.kind), 0, 0, "sgd", optimizers, OPTF_MATH, "optimizer" },
    { "lr", OPT_DOUBLE, F(sched.base_lr), 0, 100, "0.1", NULL, OPTF_MATH | OPTF_POSITIVE,
      "base learning rate (at the reference batch)" },
    { "lr-scaling", OPT_ENUM, F(sched.scaling), 0, 0, "none", scalings, OPTF_MATH,
      "scale the rate with global batch / reference batch; adascale: by AdaScale's gain from the noise scale, with the schedule on its scale-invariant clock (training ends when that reaches --epochs)" },
    { "ref-batch", OPT_INT, F(sched.ref_batch), 1, 16777216, "256", NULL, OPTF_MATH,
      "reference batch of the scaling rule" },
    { "warmup-epochs", OPT_DOUBLE, F(sched.warmup_epochs), 0, 100000, "0", NULL, OPTF_MATH,
      "linear warm-up length in epochs" },
    { "warmup-steps", OPT_INT, F(sched.warmup_steps), 0, BIG, "0", NULL, OPTF_MATH,
      "linear warm-up length in steps (wins over --warmup-epochs)" },
    { "warmup-start", OPT_DOUBLE, F(sched.warmup_start), -1, 1, "-1", NULL, OPTF_MATH,
      "warm-up start factor of the scaled rate (-1: start at the unscaled rate)" },
    { "lr-decay", OPT_ENUM, F(sched.decay), 0, 0, "constant", decays, OPTF_MATH, "decay schedule" },
    { "lr-gamma", OPT_DOUBLE, F(sched.gamma), 0, 1, "0.1", NULL, OPTF_MATH | OPTF_POSITIVE,
      "step/exp decay factor" },
    { "lr-milestones", OPT_STRING, F(lr_milestones), 0, 0, "", NULL, OPTF_MATH,
      "step decay epochs, e.g. 30,60,80 (one milestone: the two-stage schedule)" },
    { "lr-power", OPT_DOUBLE, F(sched.power), 0, 100, "1", NULL, OPTF_MATH | OPTF_POSITIVE,
      "polynomial decay power" },
    { "lr-floor", OPT_DOUBLE, F(sched.floor), 0, 0.999, "0", NULL, OPTF_MATH,
      "lowest rate of cosine/poly/sgdr/cyclic, as a fraction of the peak" },
    { "sgdr-t0", OPT_DOUBLE, F(sched.sgdr_t0), 0, 100000, "10", NULL, OPTF_MATH | OPTF_POSITIVE,
      "SGDR first period in epochs" },
    { "sgdr-tmult", OPT_DOUBLE, F(sched.sgdr_tmult), 1, 100, "1", NULL, OPTF_MATH,
      "SGDR period growth factor" },
    { "cycle-epochs", OPT_DOUBLE, F(sched.cycle_epochs), 0, 100000, "2", NULL,
      OPTF_MATH | OPTF_POSITIVE,
      "cyclic half period (step size) in epochs" },
    { "onecycle-pct", OPT_DOUBLE, F(sched.onecycle_pct), 0, 0.999, "0.3", NULL,
      OPTF_MATH | OPTF_POSITIVE,
      "one-cycle: share of training spent rising" },
    { "onecycle-div", OPT_DOUBLE, F(sched.onecycle_div), 1, 1e6, "25", NULL, OPTF_MATH,
      "one-cycle: peak / starting rate" },
    { "onecycle-final-div", OPT_DOUBLE, F(sched.onecycle_final_div), 1, 1e9, "1e4", NULL, OPTF_MATH,
      "one-cycle: starting / final rate" },
    { "momentum", OPT_DOUBLE, F(sched.momentum), 0, 0.9999, "0.9", NULL, OPTF_MATH,
      "SGD/LARS momentum, Adam/AdamW/LAMB beta1" },
    { "momentum-min", OPT_DOUBLE, F(sched.momentum_min), 0, 0.9999, "0.85", NULL, OPTF_MATH,
      "one-cycle: momentum at the peak rate" },
    { "nesterov", OPT_BOOL, F(optim.nesterov), 0, 0, "false", NULL,
      OPTF_MATH, "Nesterov momentum" },
    { "beta2", OPT_DOUBLE, F(optim.beta2), 0, 0.999999, "0.999", NULL, OPTF_MATH,
      "Adam/AdamW/LAMB second-moment decay" },
    { "adam-eps", OPT_DOUBLE, F(optim.eps), 0, 1, "1e-8", NULL, OPTF_MATH | OPTF_POSITIVE,
      "Adam/AdamW/LAMB epsilon" },
    { "weight-decay", OPT_DOUBLE, F(optim.weight_decay), 0, 1, "0", NULL,
      OPTF_MATH, "weight decay" },
    { "wd-mode", OPT_ENUM, F(optim.wd_mode), 0, 0, "l2", wd_modes, OPTF_MATH,
      "SGD weight decay: l2 (added to the gradient) or decoupled" },
    { "wd-exempt-bn-bias", OPT_BOOL, F(optim.wd_exempt_bn_bias), 0, 0, "false", NULL, OPTF_MATH,
      "no weight decay on biases and batch-norm parameters" },
    { "trust-coef", OPT_DOUBLE, F(optim.trust_coef), 0, 1, "0.001", NULL, OPTF_MATH | OPTF_POSITIVE,
      "LARS trust coefficient eta" },
    { "clip-norm", OPT_DOUBLE, F(clip_norm), 0, 1e9, "0", NULL, OPTF_MATH,
      "clip the mean gradient (after the reduction, over every parameter) to this global norm, as PyTorch's clip_grad_norm_; the logged grad_norm is before clipping (0: off)" },
    { "label-smoothing", OPT_DOUBLE, F(label_smoothing), 0, 0.99, "0", NULL, OPTF_MATH,
      "train on targets (1 - S) onehot + S / classes; the training loss is the smoothed one, evaluations report the plain cross-entropy (0: off)" },
    { "accumulate", OPT_INT, F(accumulate), 1, 65536, "1", NULL, OPTF_MATH,
      "gradient accumulation: each rank's slice of the global batch goes forward and backward as K equal micro-batches, one at a time (activations for one), before one update; batch norm normalises each micro-batch (or --bn-group groups inside it), so the result equals --bn-group slice/K without it, bit for bit" },
    { "seed", OPT_U64, F(seed), 0, 1.8e19, "1", NULL, OPTF_MATH, "random seed" },
    { "eval-every", OPT_INT, F(eval_every), 0, 100000, "1", NULL, 0,
      "evaluate every N epochs (0: only at the end)" },
    { "log-every", OPT_INT, F(log_every), 1, BIG, "50", NULL, 0,
      "log training metrics every N steps" },
    { "threads", OPT_INT, F(threads), 1, 1024, "1", NULL, 0, "OpenBLAS threads per rank" },
    { "bucket-kb", OPT_INT, F(bucket_kb), 1, 1048576, "1024", NULL, 0,
      "gradient reduction bucket size in KiB" },
    { "overlap", OPT_BOOL, F(overlap), 0, 0, "true", NULL, 0,
      "overlap the gradient allreduce with backward (else block after it)" },
    { "shard-optimizer", OPT_BOOL, F(shard_optimizer), 0, 0, "true", NULL, 0,
      "with several ranks: reduce-scatter the gradients, each rank updates and keeps the optimizer state of 1/N of the parameters, then all-gather them (ZeRO stage 1)" },
    { "shared-memory", OPT_BOOL, F(shared_memory), 0, 0, "true", NULL, 0,
      "with --shard-optimizer and every rank on one machine: sum the shards in shared memory and keep one copy of the parameters" },
    { "local-steps", OPT_INT, F(local_steps), 0, 1000000, "0", NULL, OPTF_MATH,
      "local SGD (Lin et al. 2020): every rank takes H optimizer steps on its own B/N samples, summing no gradients, then the ranks average their parameters and batch-norm running statistics (periods also end with each epoch); 0: off" },
    { "local-steps-after", OPT_INT, F(local_steps_after), 0, 100000, "0", NULL, OPTF_MATH,
      "post-local SGD: ordinary data-parallel steps for the first E epochs, then --local-steps (the paper switches at the first decay of the rate)" },
    { "local-average-optimizer", OPT_BOOL, F(local_average_optimizer), 0, 0, "false", NULL,
      OPTF_MATH,
      "with --local-steps: also average the optimizer state (momentum, Adam's moments) at each average (default: each rank keeps its own)" },
    { "check-every", OPT_INT, F(check_every), 0, BIG, "100", NULL, 0,
      "compare a parameter checksum across ranks every N steps (0: never)" },
    { "stall-timeout", OPT_DOUBLE, F(stall_timeout), 0, 1e6, "300", NULL, 0,
      "seconds a rank waits on the others in a step (or for rank 0's next plan, which includes a checkpoint write) before it logs which ranks and which wait it lacks and ends the job with exit status 5 (0: wait forever); the limit grows to 20x the median of the recent step times when that is longer" },
    { "noise-scale", OPT_BOOL, F(noise_scale), 0, 0, "true", NULL, 0,
      "estimate the gradient noise scale (one rank: from the two halves of the batch)" },
    { "noise-every", OPT_INT, F(noise_every), 1, 1000000, "10", NULL, 0,
      "measure the gradient norms for the noise scale every N steps" },
    { "noise-ema", OPT_DOUBLE, F(noise_ema), 0, 0.99999, "0.9", NULL, 0,
      "with --noise-average ema: the moving average's decay per measurement" },
    { "noise-average", OPT_ENUM, F(noise_average), 0, 0, "window", noise_averages, OPTF_MATH,
      "how the noise scale's measurements are averaged: window (over the last --noise-window training samples, weighted by batch) or ema (--noise-ema per measurement)" },
    { "noise-window", OPT_INT, F(noise_window), 0, BIG, "0", NULL, OPTF_MATH,
      "the noise scale's window in training samples, at least 4 measurements (0: one epoch of the training set)" },
    { "max-steps", OPT_INT, F(max_steps), 0, BIG, "0", NULL, 0,
      "stop after N steps (0: run all epochs)" },
    { "resume", OPT_STRING, F(resume), 0, 0, "", NULL, 0,
      "continue a run: auto (the run directory's newest good checkpoint) or a checkpoint path" },
    { "extend", OPT_BOOL, F(extend), 0, 0, "false", NULL, 0,
      "with --resume: accept a new --epochs for a poly, cosine or onecycle decay, whose shape is stretched to the new end (refused without it)" },
    { "init-from", OPT_STRING, F(init_from), 0, 0, "", NULL, OPTF_MATH,
      "fine-tune: start from this checkpoint's (or ddtrain-exported .onnx graph's) weights and input normalisation" },
    { "reset-head", OPT_BOOL, F(reset_head), 0, 0, "false", NULL, OPTF_MATH,
      "with --init-from: re-initialise the last layer (e.g. for another class count)" },
    { "freeze-layers", OPT_INT, F(freeze_layers), 0, 1000, "0", NULL, OPTF_MATH,
      "keep the first K layers (and their batch norms) fixed" },
    { "layer-lr-decay", OPT_DOUBLE, F(layer_lr_decay), 0, 1, "1", NULL, OPTF_MATH | OPTF_POSITIVE,
      "layer l of L learns at lr x g^(L-l): earlier layers slower" },
    { "ckpt-every", OPT_INT, F(ckpt_every), 0, BIG, "0", NULL, 0,
      "checkpoint every N steps (0: off)" },
    { "ckpt-every-epochs", OPT_INT, F(ckpt_every_epochs), 0, 100000, "1", NULL, 0,
      "checkpoint every N epochs (0: off)" },
    { "ckpt-keep", OPT_INT, F(ckpt_keep), 1, 100000, "3", NULL, 0,
      "keep the newest K checkpoints" },
    { "early-stop", OPT_INT, F(early_stop), 0, 100000, "0", NULL, 0,
      "stop (cleanly: final checkpoint, exit 0) after N evaluations without improvement of the validation metric (the test set's without one, with a warning); 0: off; implies --keep-best" },
    { "early-stop-metric", OPT_ENUM, F(early_stop_metric), 0, 0, "loss", watched, OPTF_MATH,
      "what --early-stop and --keep-best watch: the validation loss (lower is better) or accuracy (higher)" },
    { "keep-best", OPT_BOOL, F(keep_best), 0, 0, "false", NULL, 0,
      "write checkpoints/best.ckpt whenever the watched metric improves (never removed by --ckpt-keep)" },
    { "ckpt-at-end", OPT_BOOL, F(ckpt_at_end), 0, 0, "true", NULL, 0,
      "checkpoint when training ends" },
    { "stop-on-divergence", OPT_BOOL, F(stop_on_divergence), 0, 0, "true", NULL, 0,
      "stop with exit status 3 when the loss becomes NaN or infinite" },
    { "quiet", OPT_BOOL, F(quiet), 0, 0, "false", NULL, 0, "no progress output" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

void train_config_defaults(struct train_config *c)
{
    memset(c, 0, sizeof *c);
    config_defaults(train_options, c);
    /* not an option: LARS and LAMB give biases and batch-norm parameters
     * trust ratio 1 and no decay, as their papers do */
    c->optim.trust_exempt_vectors = true;
}
