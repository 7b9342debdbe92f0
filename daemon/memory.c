/* Reads resident set sizes from /proc/self/status and the memory the
 * machine has left from /proc/meminfo. */
#include "memory.h"

#include <stdio.h>
#include <string.h>

/* A "Key:  N kB" line of a /proc file, in bytes. */
static size_t proc_bytes(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
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

static size_t status_bytes(const char *key)
{
    return proc_bytes("/proc/self/status", key);
}

size_t mem_peak_rss(void)
{
    return status_bytes("VmHWM:");
}

size_t mem_current_rss(void)
{
    return status_bytes("VmRSS:");
}

size_t mem_available(void)
{
    return proc_bytes("/proc/meminfo", "MemAvailable:");
}
