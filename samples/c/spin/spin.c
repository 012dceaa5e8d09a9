// spin: busy-waits for direct_inputs.ms milliseconds (default 100), then prints
// {"spun_ms":N}. Used by the tests to have executions in flight (crash recovery,
// shutdown grace) and to check timeouts of guests that never call the host.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long read_ms(const char *input) {
    const char *p = input ? strstr(input, "\"ms\"") : NULL;
    if (!p) return 100;
    p = strchr(p, ':');
    return p ? strtol(p + 1, NULL, 10) : 100;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    long ms = read_ms(argc > 1 ? argv[1] : NULL);
    double start = now_ms();
    volatile unsigned long spins = 0;
    while (ms < 0 || now_ms() - start < (double)ms) spins++;
    fprintf(stderr, "spun %lu times\n", spins);
    printf("{\"spun_ms\":%ld}\n", ms);
    return 0;
}
