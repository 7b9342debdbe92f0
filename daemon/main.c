/* The ddtrain program: MPI set-up and the subcommands. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ddtrain COMMAND [options]\n\n"
            "commands:\n"
            "  train     train a model (under mpirun for several ranks)\n"
            "  help      this text\n\n"
            "`ddtrain COMMAND --help` lists a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    int status;
    if (!strcmp(argv[1], "train")) {
        MPI_Init(&argc, &argv);
        status = train_main(argc, argv, 2);
        MPI_Finalize();
    } else {
        fprintf(stderr, "ddtrain: unknown command '%s'\n", argv[1]);
        usage(stderr);
        status = 2;
    }
    return status;
}
