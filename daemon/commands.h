/* The subcommands besides `train`; each returns the process exit status. */
#ifndef DDT_COMMANDS_H
#define DDT_COMMANDS_H

#include "config.h"

int ctl_main(int argc, char **argv, int first);     /* no MPI */
int inspect_main(int argc, char **argv, int first); /* no MPI */
int eval_main(int argc, char **argv, int first);    /* after MPI_Init */
int sharpness_main(int argc, char **argv, int first);   /* after MPI_Init */
int hessian_main(int argc, char **argv, int first);     /* after MPI_Init */
int interpolate_main(int argc, char **argv, int first); /* after MPI_Init */
int landscape_main(int argc, char **argv, int first);   /* after MPI_Init */
int summarize_main(int argc, char **argv, int first);   /* no MPI */
int export_main(int argc, char **argv, int first);      /* no MPI */

/* Each command's option table, {NULL}-terminated (train's is in train.h). */
extern const struct option_def ctl_options[], inspect_options[], eval_options[],
    sharpness_options[], hessian_options[], interpolate_options[], landscape_options[],
    summarize_options[], export_options[];

/* What the man pages and the shell completion say about a command; built
 * from the same tables and lines as --help and `ddtrain help`, so that they
 * cannot drift apart (tests/e2e_docs.sh compares them). */
struct command_doc {
    const char *name;
    const char *summary;  /* its line in `ddtrain help` */
    const char *synopsis; /* what follows "usage: " in `ddtrain NAME --help`, lines split by \n */
    const char *about;    /* more of the description, or "" */
    const char *operands; /* completion of the words that are not options: "files",
                           * "dirs", or a list of words */
    const struct option_def *options;
};

/* Every command, in the order of `ddtrain help`; ends with {NULL}. */
extern const struct command_doc command_docs[];

const struct command_doc *command_doc_find(const char *name);

#endif
