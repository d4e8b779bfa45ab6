/*
 * frontend_dump.c - command-line driver of the C log-mel front end, for the
 * numpy agreement test (tests/test_features_agree.py) and for timing.
 *
 *   frontend_dump [--chunk N] [--config SR,LEN,SHIFT,FFT,MELS,LO,HI]
 *                 [--level-control 0|1] < in.s16 > out.f32
 *       raw little-endian int16 mono on stdin -> float32 features on stdout,
 *       frames x n_mels row-major; input is fed to the front end N samples
 *       at a time (default 4096); level control as in the default
 *       configuration (on) unless --level-control 0.
 *   frontend_dump --bench [SECONDS]
 *       time the default front end on SECONDS (default 600) of synthetic
 *       audio; prints audio seconds per CPU second.
 *
 * Exit status: 0 ok, 1 front-end error, 2 usage or I/O error.
 */
#include "kws_frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int parse_config(const char *s, kws_frontend_config *c)
{
    unsigned long sr, len, shift, fft, mels;
    double lo, hi;
    if (sscanf(s, "%lu,%lu,%lu,%lu,%lu,%lf,%lf", &sr, &len, &shift, &fft, &mels, &lo, &hi) != 7)
        return 0;
    c->sample_rate = (uint32_t)sr;
    c->frame_length = (uint32_t)len;
    c->frame_shift = (uint32_t)shift;
    c->fft_size = (uint32_t)fft;
    c->n_mels = (uint32_t)mels;
    c->low_freq = (float)lo;
    c->high_freq = (float)hi;
    return 1;
}

static kws_frontend *make(const kws_frontend_config *c, void **mem)
{
    size_t sz = kws_frontend_size(c);
    kws_frontend *fe = NULL;
    kws_status st;
    if (sz == 0) {
        fprintf(stderr, "frontend_dump: configuration out of range\n");
        return NULL;
    }
    *mem = malloc(sz); /* malloc's alignment suffices */
    if (*mem == NULL) return NULL;
    st = kws_frontend_init(c, *mem, sz, &fe);
    if (st != KWS_OK) {
        fprintf(stderr, "frontend_dump: init failed (status %d)\n", (int)st);
        free(*mem);
        return NULL;
    }
    return fe;
}

static int bench(double seconds)
{
    kws_frontend_config c = kws_frontend_default_config();
    void *mem = NULL;
    kws_frontend *fe = make(&c, &mem);
    uint32_t n = (uint32_t)(seconds * c.sample_rate), i, state = 1u, reps = 0;
    uint32_t max_frames = n / c.frame_shift + 1u;
    int16_t *pcm = (int16_t *)malloc((size_t)n * sizeof(int16_t));
    float *feats = (float *)malloc((size_t)max_frames * c.n_mels * sizeof(float));
    double cpu = 0.0, audio = 0.0, sink = 0.0;
    clock_t t0;

    if (fe == NULL || pcm == NULL || feats == NULL) return 2;
    for (i = 0; i < n; i++) {
        double v = 0.3 * sin(2.0 * 3.14159265358979 * 440.0 * i / c.sample_rate);
        state = state * 1664525u + 1013904223u;
        v += 0.1 * ((double)(state >> 8) / 16777216.0 - 0.5);
        pcm[i] = (int16_t)lrint(v * 32767.0);
    }
    t0 = clock();
    do {
        uint32_t pos = 0, frames = 0;
        kws_frontend_reset(fe);
        while (pos < n) { /* 10 ms blocks, as a device would feed it */
            uint32_t len = n - pos < 160u ? n - pos : 160u, used = 0, got = 0;
            kws_frontend_process(fe, pcm + pos, len, feats + (size_t)frames * c.n_mels,
                                 max_frames - frames, &used, &got);
            pos += used;
            frames += got;
        }
        sink = feats[0];
        audio += (double)n / c.sample_rate;
        reps++;
        cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
    } while (cpu < 2.0);
    printf("audio_s %.1f cpu_s %.3f realtime_factor %.0f us_per_frame %.3f (reps %u, feats[0] %.4f)\n",
           audio, cpu, audio / cpu, 1e6 * cpu / (audio * 100.0), (unsigned)reps, sink);
    free(pcm);
    free(feats);
    free(mem);
    return 0;
}

int main(int argc, char **argv)
{
    kws_frontend_config c = kws_frontend_default_config();
    unsigned long chunk = 4096;
    void *mem = NULL;
    kws_frontend *fe;
    int16_t *pcm;
    float *feats;
    int a;
    size_t n;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--bench") == 0)
            return bench(a + 1 < argc ? atof(argv[a + 1]) : 600.0);
        if (strcmp(argv[a], "--chunk") == 0 && a + 1 < argc) {
            chunk = strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--level-control") == 0 && a + 1 < argc) {
            c.level_control = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--config") == 0 && a + 1 < argc) {
            if (!parse_config(argv[++a], &c)) {
                fprintf(stderr, "frontend_dump: bad --config\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: frontend_dump [--chunk N] [--config SR,LEN,SHIFT,FFT,MELS,LO,HI]"
                            " [--level-control 0|1] < in.s16 > out.f32 | frontend_dump --bench [SECONDS]\n");
            return 2;
        }
    }
    if (chunk == 0 || chunk > 1000000ul) return 2;
    fe = make(&c, &mem);
    pcm = (int16_t *)malloc(chunk * sizeof(int16_t));
    /* At most chunk / shift + 1 frames can complete within one chunk. */
    feats = (float *)malloc((chunk / c.frame_shift + 1u) * c.n_mels * sizeof(float));
    if (fe == NULL || pcm == NULL || feats == NULL) return 2;
    while ((n = fread(pcm, sizeof(int16_t), chunk, stdin)) > 0) {
        uint32_t used = 0, got = 0;
        kws_status st = kws_frontend_process(fe, pcm, (uint32_t)n, feats,
                                             (uint32_t)(chunk / c.frame_shift + 1u), &used, &got);
        if (st != KWS_OK || used != n) {
            fprintf(stderr, "frontend_dump: process failed (status %d)\n", (int)st);
            return 1;
        }
        if (got > 0 && fwrite(feats, sizeof(float) * c.n_mels, got, stdout) != got) return 2;
    }
    if (ferror(stdin) || fflush(stdout) != 0) return 2;
    free(pcm);
    free(feats);
    free(mem);
    return 0;
}
