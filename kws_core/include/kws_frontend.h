/*
 * kws_frontend.h - streaming log-mel filterbank (the acoustic front end).
 *
 * Strict C99, also valid C++. Same conventions as kws.h: no allocation, no
 * global mutable state, no I/O; the front end lives in memory the caller owns
 * (size it with kws_frontend_size(), build it with kws_frontend_init()).
 *
 * Definition (the numpy twin kws/features.py is the readable specification;
 * tests/test_features_agree.py holds the two to 1e-3 in log-mel, measured
 * ~1e-4 or better; single-precision rounding limits agreement only in bands
 * more than ~80 dB below a frame's loudest band, which real audio, having a
 * noise floor, does not reach):
 *
 *   samples     int16, scaled to [-1, 1) by 1/32768
 *   framing     frame_length samples (400 = 25 ms at 16 kHz), hop frame_shift
 *               (160 = 10 ms); a frame is emitted as soon as its last sample
 *               arrives; no padding at either end
 *   per frame   subtract the frame's mean (DC), multiply by a periodic Hann
 *               window w[n] = 0.5 - 0.5 cos(2 pi n / frame_length), zero-pad
 *               to fft_size (512), power spectrum |X[k]|^2, k = 0..fft_size/2
 *               (no 1/N scaling); no pre-emphasis, no dither
 *   mel         n_mels (40) triangles, HTK mel scale mel = 2595 log10(1 + f/700),
 *               n_mels + 2 points equally spaced in mel from low_freq (20 Hz)
 *               to high_freq (7600 Hz); filter m rises linearly in Hz from
 *               point m to 1 at point m+1 and falls to 0 at point m+2 (peak 1,
 *               no area normalisation); bin k sits at k * sample_rate / fft_size
 *   output      log(max(mel_energy, energy_floor)), natural log, floor 1e-10;
 *               one row of n_mels floats per frame
 *   level       with level_control = 1 (the default; 0 gives the raw log-mel
 *   control     the networks are trained on): a causal automatic gain that
 *               lifts quiet speech towards the level of the training speech and
 *               never lowers anything. Per frame, in nats of power (dB x
 *               0.2302585), with L = ln(max(sum of the n_mels energies,
 *               energy_floor)), ln taken as (e + 2m - 2) ln 2 for the float
 *               m 2^e, m in [0.5, 1) (within 0.06 of ln; no libm call):
 *                 N = max(min(L, N + 0.03 dB), -40 dB)   noise floor (the first
 *                     frame after reset starts it at max(L, -40 dB))
 *                 onset = L > N + 15 dB and L > -25 dB
 *                 S, the speech level, unknown after reset; after the first 5
 *                     consecutive onset frames S = (their loudest L) + 10 dB;
 *                     then if L > S: S += 0.3 (L - S);
 *                     else if L > S - 10 dB and onset: S += 0.02 (L - S);
 *                     else S = max(S - 0.005 dB, -25 dB)
 *                 gain g = clamp(20 dB - S, 0, 30 dB) (0 while S is unknown)
 *               and g is added to every band above the floor (floored bands,
 *               digital silence, stay at the floor). Speech at the level of the
 *               training data (S >= 20 dB, about -25 dBFS active level and up)
 *               passes unchanged; speech 20 dB quieter is lifted by about 20 dB.
 *               The rates are per frame (10 ms at the default hop). See
 *               docs/frontend-level.md for why and what it gained.
 *
 * Computation is in single precision (a packed real FFT: an fft_size/2-point
 * complex radix-2 FFT plus the split step). The result does not depend on how
 * the sample stream is cut into kws_frontend_process() calls: output is
 * bit-for-bit identical for any chunking.
 */
#ifndef KWS_FRONTEND_H
#define KWS_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "kws.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default (and trained-for) configuration. */
#define KWS_FRONTEND_SAMPLE_RATE 16000u
#define KWS_FRONTEND_FRAME_LENGTH 400u
#define KWS_FRONTEND_FRAME_SHIFT 160u
#define KWS_FRONTEND_FFT_SIZE 512u
#define KWS_FRONTEND_N_MELS 40u

typedef struct kws_frontend_config {
    uint32_t sample_rate;  /* Hz; 1000..192000 */
    uint32_t frame_length; /* window length in samples; 2..fft_size */
    uint32_t frame_shift;  /* hop in samples; 1..frame_length */
    uint32_t fft_size;     /* power of two, 16..8192 */
    uint32_t n_mels;       /* number of mel filters, 1..256 */
    float low_freq;        /* Hz, lower edge of the first filter; >= 0 */
    float high_freq;       /* Hz, upper edge of the last filter; <= sample_rate/2 */
    float energy_floor;    /* > 0; output is log(max(energy, floor)) */
    uint32_t level_control; /* 1: automatic gain for quiet speech (above); 0: raw log-mel */
} kws_frontend_config;

/* 16000 Hz, 400/160, 512-point FFT, 40 mels over 20..7600 Hz, floor 1e-10,
 * level control on. Models are trained on this with level_control = 0 (the
 * control leaves speech at training levels unchanged); other values are
 * accepted (within the ranges above) but the Python twin must be given the
 * same ones. */
kws_frontend_config kws_frontend_default_config(void);

typedef struct kws_frontend kws_frontend; /* opaque; lives in caller memory */

/* Bytes needed for a front end with this configuration; 0 if cfg is NULL or
 * out of range. (10384 bytes for the default configuration on a 64-bit host.) */
size_t kws_frontend_size(const kws_frontend_config *cfg);

/* Build a front end inside mem[0..len). mem must be aligned for 8 bytes (any
 * malloc or a uint64_t array is). Window, FFT twiddles and mel weights are
 * computed here (this uses libm's sin/cos/log/pow); the config is copied, so
 * *cfg need not outlive the call. Nothing to free.
 *   KWS_ERR_ARG    NULL pointer or a configuration out of range
 *   KWS_ERR_ALIGN  mem not 8-byte aligned
 *   KWS_ERR_NOMEM  len < kws_frontend_size(cfg) */
kws_status kws_frontend_init(const kws_frontend_config *cfg, void *mem, size_t len,
                             kws_frontend **out);

/* Drop buffered samples: the next sample starts a new stream. */
void kws_frontend_reset(kws_frontend *fe);

/* Feed n_samples samples; write complete frames to feats (row-major,
 * frames x n_mels floats), at most max_frames of them.
 * *n_consumed = samples taken from pcm (buffered inside the front end),
 * *n_frames   = frames written.
 * Samples are consumed greedily, except that a sample which would complete a
 * frame beyond max_frames is not taken: so *n_consumed < n_samples only when
 * *n_frames == max_frames, and the caller resumes at pcm + *n_consumed.
 * (max_frames = 0 is allowed: it only buffers.) pcm may be NULL when
 * n_samples is 0, feats when max_frames is 0.
 * Frame i (since reset) covers samples [i*frame_shift, i*frame_shift +
 * frame_length) of the stream, so N samples give
 * N < frame_length ? 0 : 1 + (N - frame_length) / frame_shift frames. */
kws_status kws_frontend_process(kws_frontend *fe, const int16_t *pcm, uint32_t n_samples,
                                float *feats, uint32_t max_frames, uint32_t *n_consumed,
                                uint32_t *n_frames);

#ifdef __cplusplus
}
#endif
#endif /* KWS_FRONTEND_H */
