/* `ddtrain eval CKPT`: train and test loss and accuracy of a checkpoint,
 * the samples split across the ranks of mpirun. */
#include <math.h>
#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt_model.h"
#include "commands.h"
#include "config.h"
#include "eval_classes.h"
#include "evaluate.h"
#include "fsutil.h"
#include "metrics.h"

struct eval_config {
    char data[CONFIG_STRLEN];
    char test_data[CONFIG_STRLEN];
    int train_samples, test_samples, batch_size;
    bool json;
    bool per_class;
    char predictions[CONFIG_STRLEN];
};

const struct option_def eval_options[] = {
    { "data", OPT_STRING, offsetof(struct eval_config, data), 0, 0, "", NULL, 0,
      "data set (default: the one the run trained on)" },
    { "test-data", OPT_STRING, offsetof(struct eval_config, test_data), 0, 0, "", NULL, 0,
      "test set: a .csv file as it is, or another --data value's test split (default: the run's --test-data, else the test split of --data)" },
    { "train-samples", OPT_INT, offsetof(struct eval_config, train_samples), 0, 2147483647, "0",
      NULL, 0, "evaluate on the first N training samples (0: as trained)" },
    { "test-samples", OPT_INT, offsetof(struct eval_config, test_samples), 0, 2147483647, "0",
      NULL, 0, "evaluate on the first N test samples (0: all)" },
    { "batch-size", OPT_INT, offsetof(struct eval_config, batch_size), 1, 65536, "1000", NULL, 0,
      "samples per forward pass on each rank" },
    { "json", OPT_BOOL, offsetof(struct eval_config, json), 0, 0, "false", NULL, 0,
      "print one JSON object" },
    { "per-class", OPT_BOOL, offsetof(struct eval_config, per_class), 0, 0, "false", NULL, 0,
      "also each class's accuracy and the confusion matrix of the test samples (rows: the true label, columns: the prediction); with --json as per_class and confusion" },
    { "predictions", OPT_STRING, offsetof(struct eval_config, predictions), 0, 0, "", NULL, 0,
      "write FILE: a CSV row per test sample, in order (index,label,prediction,logit0..,prob0..)" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

/* One CSV row of sample `index`: its label, the arg-max (the lowest index
 * on ties, as the accuracy counts it), K logits and K probabilities, each
 * float printed with 9 significant digits so that it reads back exactly. */
static void prediction_row(FILE *f, size_t index, int label, const float *z, const float *p,
                           int K)
{
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[arg])
            arg = k;
    fprintf(f, "%zu,%d,%d", index, label, arg);
    for (int k = 0; k < K; k++)
        fprintf(f, ",%.9g", z[k]);
    for (int k = 0; k < K; k++)
        fprintf(f, ",%.9g", p[k]);
    fputc('\n', f);
}

/* --predictions: test samples [0, n) forwarded in evaluation mode in
 * batches of the model's capacity, one row each, written atomically. */
static int write_predictions(struct model *m, const struct dataset *d, size_t n, const char *path,
                             char *err, size_t errlen)
{
    struct atomic_file a;
    uint32_t *idx = malloc((size_t)m->max_batch * sizeof *idx);
    if (!idx) {
        snprintf(err, errlen, "--predictions %s: out of memory", path);
        return -1;
    }
    if (fs_atomic_open(&a, path, err, errlen)) {
        free(idx);
        return -1;
    }
    int K = m->classes;
    fprintf(a.f, "index,label,prediction");
    for (int k = 0; k < K; k++)
        fprintf(a.f, ",logit%d", k);
    for (int k = 0; k < K; k++)
        fprintf(a.f, ",prob%d", k);
    fputc('\n', a.f);
    struct pass_ctx ctx = { .train = false };
    for (size_t at = 0; at < n; at += (size_t)m->max_batch) {
        int B = n - at < (size_t)m->max_batch ? (int)(n - at) : m->max_batch, correct;
        for (int i = 0; i < B; i++)
            idx[i] = (uint32_t)(at + (size_t)i);
        model_batch_loss(m, d, idx, B, &ctx, &correct);
        for (int i = 0; i < B; i++)
            prediction_row(a.f, at + (size_t)i, m->labels[i], m->act[m->nlayers] + (size_t)i * K,
                           m->probs + (size_t)i * K, K);
    }
    free(idx);
    return fs_atomic_commit(&a, err, errlen);
}

int eval_main(int argc, char **argv, int first)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct eval_config c;
    char err[2 * DDT_ERRLEN], *pos[1];
    int npos;
    config_defaults(eval_options, &c);
    int rc = config_parse_args(eval_options, &c, argc, argv, first, pos, 1, &npos, err, sizeof err);
    if (rc == 1) {
        if (rank == 0) {
            printf("usage: ddtrain eval CKPT [options]   (under mpirun to split the work)\n\noptions:\n");
            config_help(eval_options, stdout);
        }
        return 0;
    }
    if (rc == 0 && npos != 1) {
        snprintf(err, sizeof err, "name one checkpoint file");
        rc = -1;
    }
    struct ckpt_model cm;
    if (rc == 0 && ckpt_model_open(&cm, pos[0], c.data, c.test_data, c.batch_size, err, sizeof err))
        rc = -1;
    if (rc == 0 && c.per_class && cm.model.classes > EVAL_PER_CLASS_MAX) {
        snprintf(err, sizeof err, "--per-class: the checkpoint's model has %d classes: its %d x %d confusion matrix is too large: allowed at most %d classes",
                 cm.model.classes, cm.model.classes, cm.model.classes, EVAL_PER_CLASS_MAX);
        ckpt_model_free(&cm);
        rc = -1;
    }
    if (rc != 0) {
        if (rank == 0)
            fprintf(stderr, "ddtrain eval: %s\n", err);
        return 2;
    }
    size_t ntrain = cm.train.n, ntest = cm.test.n;
    if (c.train_samples > 0 && (size_t)c.train_samples < ntrain)
        ntrain = (size_t)c.train_samples;
    if (c.test_samples > 0 && (size_t)c.test_samples < ntest)
        ntest = (size_t)c.test_samples;
    double trl, tra, tel, tea, val = NAN, vaa = NAN;
    evaluate_split(&cm.model, &cm.train, ntrain, MPI_COMM_WORLD, &trl, &tra);
    if (cm.val.n > 0)
        evaluate_split(&cm.model, &cm.val, cm.val.n, MPI_COMM_WORLD, &val, &vaa);
    evaluate_split(&cm.model, &cm.test, ntest, MPI_COMM_WORLD, &tel, &tea);
    int K = cm.model.classes;
    long long *confusion = NULL;
    if (c.per_class) {
        if (eval_confusion(&cm.model, &cm.test, ntest, MPI_COMM_WORLD, &confusion)) {
            if (rank == 0)
                fprintf(stderr, "ddtrain eval: --per-class: out of memory for %d classes\n", K);
            ckpt_model_free(&cm);
            return 1;
        }
    }
    if (rank == 0 && c.predictions[0] &&
        write_predictions(&cm.model, &cm.test, ntest, c.predictions, err, sizeof err)) {
        fprintf(stderr, "ddtrain eval: %s\n", err);
        free(confusion);
        ckpt_model_free(&cm);
        return 1;
    }
    if (rank == 0) {
        if (c.json) {
            printf("{\"checkpoint\":\"%s\",\"train_samples\":%zu,\"test_samples\":%zu,\"train_loss\":",
                   pos[0], ntrain, ntest);
            metrics_json_number(stdout, trl);
            printf(",\"train_accuracy\":");
            metrics_json_number(stdout, tra);
            if (cm.val.n > 0) {
                printf(",\"val_samples\":%zu,\"val_loss\":", cm.val.n);
                metrics_json_number(stdout, val);
                printf(",\"val_accuracy\":");
                metrics_json_number(stdout, vaa);
            }
            printf(",\"test_loss\":");
            metrics_json_number(stdout, tel);
            printf(",\"test_accuracy\":");
            metrics_json_number(stdout, tea);
            if (confusion)
                eval_json_confusion(stdout, confusion, K);
            printf("}\n");
        } else {
            printf("checkpoint %s\ntrain loss %.6f accuracy %.4f (%zu samples)\n", pos[0], trl,
                   tra, ntrain);
            if (cm.val.n > 0)
                printf("val   loss %.6f accuracy %.4f (%zu samples)\n", val, vaa, cm.val.n);
            printf("test  loss %.6f accuracy %.4f (%zu samples)\n", tel, tea, ntest);
            if (confusion)
                eval_print_confusion(stdout, confusion, K);
        }
    }
    free(confusion);
    ckpt_model_free(&cm);
    return 0;
}
