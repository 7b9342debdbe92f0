/* The subcommands besides `train`; each returns the process exit status. */
#ifndef DDT_COMMANDS_H
#define DDT_COMMANDS_H

int ctl_main(int argc, char **argv, int first);     /* no MPI */
int inspect_main(int argc, char **argv, int first); /* no MPI */
int eval_main(int argc, char **argv, int first);    /* after MPI_Init */
int sharpness_main(int argc, char **argv, int first);   /* after MPI_Init */
int hessian_main(int argc, char **argv, int first);     /* after MPI_Init */
int interpolate_main(int argc, char **argv, int first); /* after MPI_Init */
int landscape_main(int argc, char **argv, int first);   /* after MPI_Init */
int summarize_main(int argc, char **argv, int first);   /* no MPI */
int export_main(int argc, char **argv, int first);      /* no MPI */

#endif
