/* clock.c - seconds on the monotonic clock, for timing passes and programs. */
#include <time.h>

#include "layers.h"

double clock_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
