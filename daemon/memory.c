/* Reads the peak resident set size from /proc/self/status. */
#include "memory.h"

#include <stdio.h>
#include <string.h>

size_t mem_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6) && sscanf(line + 6, "%zu", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}
