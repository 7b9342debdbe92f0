/* `ddtrain ctl --run-dir DIR status|checkpoint|stop`: talks to a running
 * coordinator through its control socket. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "config.h"
#include "control.h"
#include "metrics.h"
#include "progress.h"

struct ctl_config {
    char run_dir[CONFIG_STRLEN];
    int timeout_ms;
    bool json;
};

const struct option_def ctl_options[] = {
    { "run-dir", OPT_STRING, offsetof(struct ctl_config, run_dir), 1, 0, "runs/default", NULL, 0,
      "run directory of the training job" },
    { "timeout-ms", OPT_INT, offsetof(struct ctl_config, timeout_ms), 1, 3600000, "10000", NULL,
      0, "how long to wait for the reply" },
    { "json", OPT_BOOL, offsetof(struct ctl_config, json), 0, 0, "false", NULL, 0,
      "print the reply as JSON" },
    { NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL },
};

static void print_reply(const Ddtrain__ControlReply *r, bool json)
{
    if (json) {
        printf("{\"ok\":%s,\"step\":%llu,\"epoch\":%llu,\"global_batch\":%u,\"lr\":",
               r->ok ? "true" : "false", (unsigned long long)r->step,
               (unsigned long long)r->epoch, r->global_batch);
        metrics_json_number(stdout, r->lr);
        printf(",\"recent_loss\":");
        metrics_json_number(stdout, r->recent_loss);
        printf(",\"samples_per_sec\":");
        metrics_json_number(stdout, r->samples_per_sec);
        printf(",\"eta_seconds\":");
        metrics_json_number(stdout, r->eta_seconds);
        printf(",\"last_checkpoint\":\"%s\",\"stall\":\"%s\"}\n",
               r->last_checkpoint ? r->last_checkpoint : "", r->stall ? r->stall : "");
        return;
    }
    char eta[32];
    progress_format_duration(r->eta_seconds, eta, sizeof eta);
    printf("step %llu epoch %llu batch %u lr %.6g loss %.4f %.0f samples/s ETA %s\n"
           "last checkpoint: %s\n",
           (unsigned long long)r->step, (unsigned long long)r->epoch, r->global_batch, r->lr,
           r->recent_loss, r->samples_per_sec, eta,
           r->last_checkpoint && r->last_checkpoint[0] ? r->last_checkpoint : "(none yet)");
    if (r->stall && r->stall[0])
        printf("stalled: %s\n", r->stall);
}

int ctl_main(int argc, char **argv, int first)
{
    struct ctl_config c;
    char err[DDT_ERRLEN], *pos[1];
    int npos;
    config_defaults(ctl_options, &c);
    int rc = config_parse_args(ctl_options, &c, argc, argv, first, pos, 1, &npos, err, sizeof err);
    if (rc == 1) {
        printf("usage: ddtrain ctl --run-dir DIR status|checkpoint|stop [--json]\n\noptions:\n");
        config_help(ctl_options, stdout);
        return 0;
    }
    if (rc == 0 && npos != 1) {
        snprintf(err, sizeof err, "say what to do: status, checkpoint or stop");
        rc = -1;
    }
    int kind = 0;
    if (rc == 0) {
        if (!strcmp(pos[0], "status"))
            kind = DDTRAIN__CONTROL_REQUEST__KIND__STATUS;
        else if (!strcmp(pos[0], "checkpoint"))
            kind = DDTRAIN__CONTROL_REQUEST__KIND__CHECKPOINT;
        else if (!strcmp(pos[0], "stop"))
            kind = DDTRAIN__CONTROL_REQUEST__KIND__STOP;
        else {
            snprintf(err, sizeof err, "'%s' is not a request: allowed status, checkpoint, stop",
                     pos[0]);
            rc = -1;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "ddtrain ctl: %s\n", err);
        return 2;
    }
    Ddtrain__ControlReply *reply;
    if (control_request(c.run_dir, kind, &reply, c.timeout_ms, err, sizeof err)) {
        fprintf(stderr, "ddtrain ctl: %s\n", err);
        return 1;
    }
    int status = 0;
    if (!reply->ok) {
        fprintf(stderr, "ddtrain ctl: the coordinator refused: %s\n", reply->error);
        status = 1;
    } else {
        if (kind == DDTRAIN__CONTROL_REQUEST__KIND__CHECKPOINT)
            printf("checkpoint requested: it is written after the current step\n");
        else if (kind == DDTRAIN__CONTROL_REQUEST__KIND__STOP)
            printf("stop requested: the run checkpoints after the current step and exits\n");
        print_reply(reply, c.json);
    }
    ddtrain__control_reply__free_unpacked(reply, NULL);
    return status;
}
