/* fuzz_check.h - what every fuzz target shares: the libFuzzer entry point's
 * prototype and FUZZ_CHECK, an invariant that aborts (so libFuzzer and the
 * replay driver report it as a crash) with the failing expression. */
#ifndef KWS_FUZZ_CHECK_H
#define KWS_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                       \
            abort();                                                              \
        }                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
