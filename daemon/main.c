/* The ddtrain program: MPI set-up and the subcommands. */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

#ifndef DDT_VERSION
#define DDT_VERSION "unknown" /* set by the build from configure.ac */
#endif
#include "train.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ddtrain COMMAND [options]\n\n"
            "commands:\n"
            "  train       train a model (under mpirun for several ranks)\n"
            "  eval        loss and accuracy of a checkpoint (under mpirun to split the work)\n"
            "  sharpness   Keskar's sharpness of a checkpoint's minimum\n"
            "  hessian     the largest Hessian eigenvalues by power iteration\n"
            "  interpolate the loss on the line between two checkpoints\n"
            "  landscape   the loss along random filter-normalised directions\n"
            "  summarize   one row per run directory: settings, losses, gap, sharpness\n"
            "  inspect     a checkpoint's header, schedule state and tensors\n"
            "  export      a checkpoint's model as an ONNX graph (--onnx FILE)\n"
            "  ctl         ask a running job for its status, a checkpoint, or a clean stop\n"
            "  help        this text\n\n"
            "`ddtrain COMMAND --help` lists a command's options; `ddtrain --version` the version.\n");
}

/* Commands that run on every rank under MPI. */
static int run_mpi(int (*fn)(int, char **, int), int argc, char **argv)
{
    /* Open MPI's default non-blocking allreduce for large messages costs the
     * step about a tenth of its speed on shared memory; the ring is measured
     * faster (make bench). A user's own setting wins. */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
    MPI_Init(&argc, &argv);
    int status = fn(argc, argv, 2);
    MPI_Finalize();
    return status;
}

/* Under mpirun, rank 1 or above of a command that does not use MPI (help,
 * inspect, export, summarize, ctl): rank 0 does the work and says what
 * failed; the others would print (and write) the same again. */
static bool other_rank_of_plain_command(int argc, char **argv)
{
    static const char *const mpi[] = { "train", "eval", "sharpness", "hessian", "interpolate",
                                       "landscape" };
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r || !strcmp(r, "0"))
        return false;
    for (size_t i = 0; argc >= 2 && i < sizeof mpi / sizeof mpi[0]; i++)
        if (!strcmp(argv[1], mpi[i]))
            return false;
    return true;
}

int main(int argc, char **argv)
{
    if (other_rank_of_plain_command(argc, argv))
        return 0;
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version")) {
        printf("ddtrain %s\n", DDT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "train"))
        return run_mpi(train_main, argc, argv);
    if (!strcmp(cmd, "eval"))
        return run_mpi(eval_main, argc, argv);
    static const struct {
        const char *name;
        int (*fn)(int, char **, int);
    } analysis[] = { { "sharpness", sharpness_main }, { "hessian", hessian_main },
                     { "interpolate", interpolate_main }, { "landscape", landscape_main } };
    for (size_t i = 0; i < sizeof analysis / sizeof analysis[0]; i++)
        if (!strcmp(cmd, analysis[i].name))
            return run_mpi(analysis[i].fn, argc, argv);
    if (!strcmp(cmd, "summarize"))
        return summarize_main(argc, argv, 2);
    if (!strcmp(cmd, "inspect"))
        return inspect_main(argc, argv, 2);
    if (!strcmp(cmd, "export"))
        return export_main(argc, argv, 2);
    if (!strcmp(cmd, "ctl"))
        return ctl_main(argc, argv, 2);
    fprintf(stderr, "ddtrain: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
