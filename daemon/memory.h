/* Resident memory, to report beside what a rank is meant to hold. */
#ifndef DDT_MEMORY_H
#define DDT_MEMORY_H

#include <stddef.h>

/* VmHWM of this process in bytes, 0 when /proc is not readable. */
size_t mem_peak_rss(void);
/* VmRSS now, likewise. */
size_t mem_current_rss(void);
/* MemAvailable of the machine: what can be allocated without swapping, 0
 * when /proc/meminfo is not readable. */
size_t mem_available(void);

#endif
