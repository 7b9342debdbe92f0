/* Reads resident set sizes from /proc/self/status. */
#include "memory.h"

#include <stdio.h>
#include <string.h>

/* A "Key:  N kB" line of /proc/self/status, in bytes. */
static size_t status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kb = 0, len = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, len) && sscanf(line + len, "%zu", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

size_t mem_peak_rss(void)
{
    return status_bytes("VmHWM:");
}

size_t mem_current_rss(void)
{
    return status_bytes("VmRSS:");
}
