/* The progress line. */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

void progress_init(struct progress *p)
{
    p->tty = isatty(STDERR_FILENO);
    p->line_open = false;
}

void progress_format_duration(double s, char *out, int outlen)
{
    if (!isfinite(s) || s < 0) {
        snprintf(out, outlen, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, outlen, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        snprintf(out, outlen, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, outlen, "%lds", t);
}

void progress_step(struct progress *p, long step, long total_steps, double epoch, int epochs,
                   double loss, double acc, double lr, int batch, double samples_per_sec,
                   double eta_seconds, double noise_scale, double gain)
{
    char eta[32], noise[48] = "", bs[48] = "";
    progress_format_duration(eta_seconds, eta, sizeof eta);
    if (isfinite(noise_scale))
        snprintf(noise, sizeof noise, " B_noise %.0f", noise_scale);
    if (batch > 0 && isfinite(gain))
        snprintf(bs, sizeof bs, " batch %d gain %.2f", batch, gain);
    else if (batch > 0)
        snprintf(bs, sizeof bs, " batch %d", batch);
    fprintf(stderr, "%sstep %ld/%ld epoch %.2f/%d loss %.4f acc %.3f lr %.4g%s %.0f samples/s%s ETA %s%s",
            p->tty ? "\r\033[K" : "", step, total_steps, epoch, epochs, loss, acc, lr, bs,
            samples_per_sec, noise, eta, p->tty ? "" : "\n");
    p->line_open = p->tty;
    fflush(stderr);
}

void progress_line(struct progress *p, const char *text)
{
    fprintf(stderr, "%s%s\n", p->line_open ? "\r\033[K" : "", text);
    p->line_open = false;
    fflush(stderr);
}
