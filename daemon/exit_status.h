/* The exit statuses of ddtrain, in one place, so that launch/ddtrain-sweep,
 * schedulers and tests can tell the kinds of ending apart. */
#ifndef DDT_EXIT_STATUS_H
#define DDT_EXIT_STATUS_H

enum ddt_exit_status {
    DDT_EXIT_OK = 0,
    DDT_EXIT_FAILURE = 1,     /* an error that is not the user's (out of memory, I/O) */
    DDT_EXIT_USAGE = 2,       /* an invalid option, file or value: nothing was written */
    DDT_EXIT_DIVERGED = 3,    /* a non-finite loss, or replicas that differ */
    DDT_EXIT_CKPT_FAILED = 4, /* a checkpoint could not be written (after one retry) */
    DDT_EXIT_STALLED = 5,     /* a peer made no progress for --stall-timeout: resume it */
};

#endif
