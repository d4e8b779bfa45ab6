/* check.h - the small check framework of the C unit tests (test_core.c,
 * test_net.c): CHECK, CHECK_EQ, CHECK_STATUS and RUN over per-file counters.
 * Each test program includes it once. */
#ifndef KWS_TESTS_CHECK_H
#define KWS_TESTS_CHECK_H

#include <stdio.h>

#include "kws.h"

static int g_tests_passed = 0;
static int g_tests_failed = 0;
static int g_cur_failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            g_cur_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long long va_ = (long long)(a), vb_ = (long long)(b);                    \
        if (va_ != vb_) {                                                        \
            g_cur_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
                    __FILE__, __LINE__, #a, #b, va_, vb_);                       \
        }                                                                        \
    } while (0)

#define CHECK_STATUS(expr, want)                                                 \
    do {                                                                         \
        kws_status got_ = (expr);                                                \
        if (got_ != (want)) {                                                    \
            g_cur_failures++;                                                    \
            fprintf(stderr, "%s:%d: %s gave %d (%s), expected %d (%s)\n",        \
                    __FILE__, __LINE__, #expr, (int)got_, kws_status_str(got_),  \
                    (int)(want), kws_status_str(want));                          \
        }                                                                        \
    } while (0)

#define RUN(fn)                                                                  \
    do {                                                                         \
        g_cur_failures = 0;                                                      \
        fn();                                                                    \
        if (g_cur_failures == 0) {                                               \
            g_tests_passed++;                                                    \
            printf("ok   %s\n", #fn);                                            \
        } else {                                                                 \
            g_tests_failed++;                                                    \
            printf("FAIL %s (%d checks)\n", #fn, g_cur_failures);                \
        }                                                                        \
        fflush(stdout);                                                          \
    } while (0)

#endif /* KWS_TESTS_CHECK_H */
