/*
 * kws.h - public API of the portable keyword-spotting core.
 *
 * Strict C99, also valid C++. No allocation anywhere in this API: every object
 * is built inside memory the caller owns (size it with the *_size() call,
 * build it with *_init()). The keyword model is read in place from the
 * caller's buffer (flash, mmap, a Python bytes object) and is never written.
 * No global mutable state: several decoders over several models may run at
 * once, from several threads, as long as each decoder is used by one thread
 * at a time.
 *
 * The file format and the decoder's semantics are specified in
 * docs/kwm-format.md.
 */
#ifndef KWS_H
#define KWS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KWS_VERSION_MAJOR 1
#define KWS_VERSION_MINOR 0

/* Newest model-file major version this reader understands (it reads 1 to this).
 * Overridable only to build a reader of an older release (tests/test_flash.py builds
 * firmware with -DKWS_FORMAT_MAJOR=1 to check what a device from before 2.0 does). */
#ifndef KWS_FORMAT_MAJOR
#define KWS_FORMAT_MAJOR 2
#endif
/* Newest minor version of that major this reader knows the flags of: 1 (2.1: state
 * flag KWS_STATE_BEST_PAYS). Overridable the same way (-DKWS_FORMAT_MINOR=0 builds a
 * 2.0 reader, which refuses that flag as corrupt). */
#ifndef KWS_FORMAT_MINOR
#define KWS_FORMAT_MINOR 1
#endif

typedef enum kws_status {
    KWS_OK = 0,
    KWS_ERR_ARG = 1,        /* a NULL pointer or an out-of-range argument */
    KWS_ERR_TRUNCATED = 2,  /* buffer shorter than the header or than file_size */
    KWS_ERR_MAGIC = 3,      /* not a keyword-model file */
    KWS_ERR_VERSION = 4,    /* a major format version this reader does not know */
    KWS_ERR_CRC = 5,        /* checksum mismatch: the file is corrupt */
    KWS_ERR_CORRUPT = 6,    /* a length, offset or index is out of range */
    KWS_ERR_PHONESET = 7,   /* model made for another phone set / acoustic model */
    KWS_ERR_NOMEM = 8,      /* caller's buffer too small */
    KWS_ERR_ALIGN = 9,      /* buffer not 4-byte aligned */
    KWS_ERR_UNSUPPORTED = 10 /* e.g. a big-endian host */
} kws_status;

/* A fixed, human-readable name for a status ("ok", "checksum mismatch", ...).
 * The returned string is static; never NULL. */
const char *kws_status_str(kws_status status);

/* CRC-32 (IEEE 802.3, zlib's polynomial). Start with crc = 0; feed chunks in
 * order, passing the previous result. */
uint32_t kws_crc32(uint32_t crc, const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Keyword model (read in place)                                            */
/* ------------------------------------------------------------------------ */

#define KWS_STATE_SELF 0x01u
#define KWS_STATE_ENTRY 0x02u
#define KWS_STATE_FINAL 0x04u
/* (format 1.1) a new phone begins here when the path arrives from a predecessor */
#define KWS_STATE_PHONE_START 0x08u
/* (format 2.1) the state's phone pays the uncertainty weight even on frames
 * where it is the best phone: its emission there is max(w * min(m, 0), floor)
 * instead of 0 (docs/kwm-format.md, "Decoder semantics") */
#define KWS_STATE_BEST_PAYS 0x10u

/* Keyword flags (format 1.1): score the path by the mean of its phones' mean
 * emissions instead of the mean emission per frame (docs/decoder.md). */
#define KWS_KW_PHONE_MEAN 0x0001u

/* On-file records; layout fixed by docs/kwm-format.md. */
typedef struct kws_state_rec {
    uint16_t phone;
    uint8_t flags;
    uint8_t n_preds;
    uint32_t pred_begin;
} kws_state_rec;

typedef struct kws_keyword_rec {
    uint32_t name_offset;
    uint16_t name_len;
    uint16_t pron_len;
    uint32_t pron_offset;
    uint32_t first_state;
    uint32_t n_states;
    float threshold;
    uint16_t max_frames;
    uint16_t flags;
    float expected_fa_per_hour;
} kws_keyword_rec;

/* A parsed, validated view of a model buffer. All pointers point into the
 * caller's buffer, which must outlive this struct and stay unchanged. */
typedef struct kws_model {
    const uint8_t *data;
    uint32_t size;
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t phone_set_id;
    uint16_t n_phones;
    uint16_t n_keywords;
    uint32_t n_states;
    uint32_t n_arcs;
    uint16_t frame_shift_ms;
    uint16_t refractory_frames;
    uint16_t hold_frames;
    float emission_floor;
    float uncertainty_weight;        /* format 2.x; 0 for 1.x files */
    const kws_keyword_rec *keywords; /* n_keywords records */
    const kws_state_rec *states;     /* n_states records   */
    const uint16_t *arcs;            /* n_arcs entries     */
    const char *strings;             /* strings_size bytes */
    uint32_t strings_size;
} kws_model;

/* Validate a model buffer and fill *model. Checks magic, version, sizes,
 * CRC, and every offset, length and index, so that nothing later reads out
 * of bounds. `expected_phone_set_id` = 0 accepts any phone set; otherwise a
 * different id gives KWS_ERR_PHONESET. Never reads beyond data[len). */
kws_status kws_model_parse(const void *data, size_t len,
                           uint32_t expected_phone_set_id, kws_model *model);

/* Keyword name (UTF-8, NUL-terminated inside the buffer); NULL if k is out of
 * range. Owned by the model buffer. */
const char *kws_model_keyword_name(const kws_model *model, uint32_t k);

/* ------------------------------------------------------------------------ */
/* Streaming decoder                                                        */
/* ------------------------------------------------------------------------ */

typedef struct kws_detection {
    uint32_t keyword;      /* keyword index in the model */
    float score;           /* mean per-frame log-posterior ratio, <= 0 */
    uint64_t start_frame;  /* first frame of the keyword (since reset) */
    uint64_t end_frame;    /* last frame of the keyword (inclusive) */
} kws_detection;

typedef struct kws_decoder kws_decoder; /* opaque; lives in caller memory */

/* Bytes needed for a decoder over `model` (0 if model is NULL). */
size_t kws_decoder_size(const kws_model *model);

/* Build a decoder inside mem[0..len). mem must be aligned for 8 bytes
 * (any malloc or a uint64_t array is). The decoder keeps a pointer to
 * *model (and so to its buffer), which must outlive it. Nothing to free. */
kws_status kws_decoder_init(const kws_model *model, void *mem, size_t len,
                            kws_decoder **out);

/* Forget all tokens and pending candidates; frame count back to 0;
 * thresholds back to the model's. */
void kws_decoder_reset(kws_decoder *dec);

/* Override keyword k's threshold for this decoder (the model is untouched). */
kws_status kws_decoder_set_threshold(kws_decoder *dec, uint32_t k, float threshold);
float kws_decoder_get_threshold(const kws_decoder *dec, uint32_t k);

/* Number of frames processed since reset. */
uint64_t kws_decoder_frames(const kws_decoder *dec);

/* Process up to n_frames frames of log-posteriors (row-major,
 * n_frames x model->n_phones floats). Detections go to out[0..cap); the call
 * stops early, before a frame that could overflow `out` (each frame can give
 * at most n_keywords detections), so cap must be >= n_keywords.
 * *n_done = frames consumed, *n_out = detections written.
 * If scores != NULL it receives, for each consumed frame, each keyword's
 * current score (row-major, frames x n_keywords), or -INFINITY-like
 * KWS_NO_SCORE when the keyword has no complete path.
 * No allocation, no I/O. */
#define KWS_NO_SCORE (-1.0e30f)
kws_status kws_decoder_process(kws_decoder *dec, const float *logpost,
                               uint32_t n_frames, kws_detection *out,
                               uint32_t cap, uint32_t *n_done, uint32_t *n_out,
                               float *scores);

/* End of stream: report pending candidates (at most n_keywords; cap must be
 * >= n_keywords). Tokens are kept; call reset to start a new stream. */
kws_status kws_decoder_flush(kws_decoder *dec, kws_detection *out, uint32_t cap,
                             uint32_t *n_out);

#ifdef __cplusplus
}
#endif
#endif /* KWS_H */
