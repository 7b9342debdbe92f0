/* The commands as the man pages and the shell completion describe them: the
 * lines of `ddtrain help` and of each command's --help, beside the option
 * tables they print (tests/e2e_docs.sh checks that they say the same). */
#include <string.h>

#include "commands.h"
#include "train.h"

const struct command_doc command_docs[] = {
    { "train", "train a model (under mpirun for several ranks)",
      "ddtrain train [options]\nmpirun -np N ddtrain train [options]   (or launch/ddtrain-run)",
      "Every rank computes the gradients of its slice of each global batch; they are "
      "summed across the ranks and every rank applies the same optimizer step. Rank 0 also "
      "plans the schedule, evaluates, and writes the run directory: the effective config, "
      "metrics.jsonl, checkpoints and the control socket. A stopped run continues with "
      "--resume auto.",
      "", train_options },
    { "eval", "loss and accuracy of a checkpoint (under mpirun to split the work)",
      "ddtrain eval CKPT [options]   (under mpirun to split the work)",
      "Prints the train and test loss and accuracy of the checkpoint CKPT.", "files",
      eval_options },
    { "sharpness", "Keskar's sharpness of a checkpoint's minimum",
      "ddtrain sharpness CKPT --eps E [--subspace P] [options]",
      "The largest increase of the training loss over a box of relative size eps around "
      "the parameters of CKPT (Keskar et al. 2016, metric 2.1), found by projected "
      "sign-gradient ascent, in the full space or a random subspace.",
      "files", sharpness_options },
    { "hessian", "the largest Hessian eigenvalues by power iteration",
      "ddtrain hessian CKPT [--top K] [--iters N] [--tol T] [options]",
      "The largest eigenvalues of the Hessian of the training loss at CKPT, by power "
      "iteration with deflation on Hessian-vector products from finite differences of "
      "gradients.",
      "files", hessian_options },
    { "interpolate", "the loss on the line between two checkpoints",
      "ddtrain interpolate A.ckpt B.ckpt [--alpha LO:HI:N] [options]",
      "Train and test loss and accuracy at the parameters alpha B + (1 - alpha) A for each "
      "alpha (Keskar et al.'s Figure 3).",
      "files", interpolate_options },
    { "landscape", "the loss along random filter-normalised directions",
      "ddtrain landscape CKPT [--dims 1|2] [--range LO:HI:N] [--filter-norm] [options]",
      "The training loss along one or two seeded random directions through the parameters "
      "of CKPT (Li et al. 2018).",
      "files", landscape_options },
    { "summarize", "one row per run directory: settings, losses, gap, sharpness",
      "ddtrain summarize RUN_DIR|FOLDER... [--markdown] [--rank-by COLUMN] [--out FILE]",
      "A CSV or markdown table of the settings that differ between the runs, their final "
      "losses and accuracies, the generalization gap, and the sharpness and Hessian results "
      "saved beside them. A FOLDER that is not a run stands for the runs one or two levels "
      "inside it (a sweep's folder). Rows are ranked best first by validation accuracy when "
      "a run has a validation set, else by test accuracy (--rank-by).",
      "dirs", summarize_options },
    { "inspect", "a checkpoint's header, schedule state and tensors",
      "ddtrain inspect CKPT [--json] [--show-config]",
      "Prints the header of the checkpoint CKPT, its schedule state, and every tensor's "
      "name, shape and checksum.",
      "files", inspect_options },
    { "export", "a checkpoint's model as an ONNX graph (--onnx FILE)",
      "ddtrain export CKPT --onnx FILE",
      "Writes the checkpoint's model as an ONNX inference graph (opset 13): input "
      "\"input\" (batch x features, or batch x C x H x W) of raw sample values as the data "
      "set stores them, the input normalisation as its first nodes, output \"logits\" "
      "(batch x classes). Batch norm keeps its running statistics (not folded); dropout "
      "is left out.",
      "files", export_options },
    { "ctl", "ask a running job for its status, a checkpoint, or a clean stop",
      "ddtrain ctl --run-dir DIR status|checkpoint|stop [--json]",
      "Talks to the coordinator of the job training in DIR through its control socket.",
      "status checkpoint stop", ctl_options },
    { NULL, NULL, NULL, NULL, NULL, NULL },
};

const struct command_doc *command_doc_find(const char *name)
{
    for (const struct command_doc *d = command_docs; d->name; d++)
        if (!strcmp(d->name, name))
            return d;
    return NULL;
}
