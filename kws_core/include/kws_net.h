/*
 * kws_net.h - int8 inference of the acoustic network (a .kwn blob).
 *
 * Strict C99, also valid C++. Same conventions as kws.h: no allocation, no
 * global mutable state, no I/O; the blob is read in place (flash, mmap, a
 * Python bytes object) and never written; all working memory is the caller's.
 *
 * The blob is written by tools/export_net.py from an int8 .tflite network
 * (RESHAPE, CONV_2D / DEPTHWISE_CONV_2D over time, RESHAPE, SOFTMAX); its
 * format and the arithmetic are specified in docs/kwn-format.md.
 *
 * kws_net_invoke() is one TFLite invoke computed exactly as TFLite's
 * *reference* int8 kernels compute it (reference_integer_ops::ConvPerChannel,
 * DepthwiseConvPerChannel, reference_ops::Softmax with gemmlowp fixed point;
 * also what TFLite Micro runs): bit-identical output to ai-edge-litert with
 * OpResolverType.BUILTIN_REF, and hence to TFLM. (ai-edge-litert's default
 * XNNPACK and optimized kernels round differently; see docs/kwn-format.md.)
 *
 * The stream (kws_net_stream_*) gives the outputs of the network's window
 * sliding over a stream of float log-mel frames, with the semantics of
 * kws/acoustic.py's AcousticStream, and returns float log-posteriors computed
 * as acoustic.py computes them. It does not recompute windows: every layer is
 * a 'valid' convolution over time, so it keeps each layer's last kernel - 1
 * input frames and computes each layer's output frame once (bit-identical to
 * kws_net_invoke() on the padded windows). On targets with the Arm DSP
 * extension (__ARM_FEATURE_DSP, e.g. Cortex-M4) its kernels use SMLAD.
 */
#ifndef KWS_NET_H
#define KWS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "kws.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Net-blob format version this reader understands (major must match). */
#define KWS_NET_FORMAT_MAJOR 1
/* Most layers (CONV_2D / DEPTHWISE_CONV_2D) a blob may hold. */
#define KWS_NET_MAX_LAYERS 32

/* Frames the stream's layers are run over at a time (at most; each layer
 * keeps kernel - 1 + this many input frames). Compile-time setting, >= 1. */
#ifndef KWS_NET_BLOCK
#define KWS_NET_BLOCK 8u
#endif

#define KWS_NET_LAYER_CONV 1u      /* CONV_2D, kernel 1xK, all input channels */
#define KWS_NET_LAYER_DEPTHWISE 2u /* DEPTHWISE_CONV_2D, kernel 1xK */

/* On-file layer record (48 bytes); layout fixed by docs/kwn-format.md. */
typedef struct kws_net_layer_rec {
    uint8_t type;             /* KWS_NET_LAYER_* */
    uint8_t activation;       /* TFLite fused activation code (informative) */
    uint16_t kernel;          /* K, frames */
    uint16_t in_ch;
    uint16_t out_ch;
    uint16_t in_frames;
    uint16_t out_frames;      /* in_frames - kernel + 1 */
    int16_t act_min;          /* output clamp, quantised */
    int16_t act_max;
    int32_t input_offset;     /* -input zero point */
    int32_t output_offset;    /* output zero point */
    uint32_t weights_offset;  /* int8; conv [out_ch][kernel][in_ch], depthwise [kernel][out_ch] */
    uint32_t bias_offset;     /* int32[out_ch] */
    uint32_t multiplier_offset; /* int32[out_ch] */
    uint32_t shift_offset;    /* int32[out_ch] */
    uint16_t depth_multiplier; /* depthwise: out_ch / in_ch; conv: 1 */
    uint16_t reserved0;
    uint32_t reserved1;
} kws_net_layer_rec;

/* A parsed, validated view of a net blob. Pointers point into the caller's
 * buffer, which must outlive this struct and stay unchanged. */
typedef struct kws_net {
    const uint8_t *data;
    uint32_t size;
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t phone_set_id;
    uint16_t n_phones;        /* output columns */
    uint16_t n_feat;          /* input features per frame (log-mel bands) */
    uint16_t chunk_frames;    /* output frames per invoke */
    uint16_t context_frames;
    uint16_t lookahead_frames;
    uint16_t in_frames;       /* window = chunk + context - 1 */
    float input_scale;
    int32_t input_zero_point;
    float output_scale;
    int32_t output_zero_point; /* -128 (TFLite int8 softmax) */
    int32_t softmax_multiplier;
    int32_t softmax_left_shift;
    int32_t softmax_diff_min;
    uint32_t n_layers;
    const kws_net_layer_rec *layers;
    const float *logpost;     /* [256]: log-posterior of int8 output v at [v + 128] */
    uint32_t max_act;         /* largest layer output, bytes (frames x channels) */
    uint32_t max_ch;          /* most output channels of a layer */
} kws_net;

/* Validate a blob and fill *net: magic, version, sizes, CRC, every offset and
 * length, the layer shape chain and the quantisation parameters' ranges, so
 * that kws_net_invoke() never reads out of bounds and never overflows.
 * `expected_phone_set_id` = 0 accepts any phone set. Never reads beyond
 * blob[len). Errors: KWS_ERR_ARG, KWS_ERR_ALIGN (blob not 4-byte aligned),
 * KWS_ERR_TRUNCATED, KWS_ERR_MAGIC, KWS_ERR_VERSION, KWS_ERR_CRC,
 * KWS_ERR_CORRUPT, KWS_ERR_PHONESET, KWS_ERR_UNSUPPORTED (big-endian host,
 * or a layer type / feature this reader does not implement). */
kws_status kws_net_parse(const uint8_t *blob, size_t len, uint32_t expected_phone_set_id,
                         kws_net *net);

/* Scratch bytes kws_net_invoke() needs (0 if net is NULL). */
size_t kws_net_scratch_bytes(const kws_net *net);

/* One network call: input int8 [in_frames][n_feat] (quantised with the
 * input scale/zero point) -> output int8 [chunk_frames][n_phones]
 * (probabilities, scale 1/256, zero point -128). scratch: 4-byte aligned
 * (else KWS_ERR_ALIGN), >= kws_net_scratch_bytes(net) (else KWS_ERR_NOMEM).
 * Input and output must not overlap scratch. Nothing else is touched, so one
 * net may be invoked from several threads with separate scratch buffers. */
kws_status kws_net_invoke(const kws_net *net, const int8_t *input, int8_t *output,
                          void *scratch, size_t scratch_bytes);

/* Quantise one float log-mel frame as kws/acoustic.py does:
 * clip(round_half_even(x / input_scale) + input_zero_point, -128, 127);
 * NaN gives the zero point. */
void kws_net_quantize_frame(const kws_net *net, const float *x, int8_t *q);

/* ------------------------------------------------------------------------ */
/* Streaming (kws/acoustic.py's AcousticStream)                              */
/* ------------------------------------------------------------------------ */

typedef struct kws_net_stream kws_net_stream; /* opaque; lives in caller memory */

/* Bytes needed for a stream over `net` (0 if net is NULL): per layer its last
 * kernel - 1 input frames plus KWS_NET_BLOCK (8) new ones (layers with
 * kernel 1 after the first share two such buffers), one int32 per output
 * channel (input offset x weight sums, folded with the bias), a 256-entry
 * softmax exp table, one int8 output chunk and, with the DSP kernels, 4
 * int16 input windows of the widest conv layer (about 20 KB for the
 * 128-channel architecture; computed at init from the blob). */
size_t kws_net_stream_size(const kws_net *net);

/* Build a stream inside mem[0..len); mem aligned for 8 bytes. Keeps a
 * pointer to *net (and its blob), which must outlive it. Nothing to free.
 * Reads every weight once (per-channel sums), so it costs about one network
 * frame; kws_net_stream_reset() does not repeat that. */
kws_status kws_net_stream_init(const kws_net *net, void *mem, size_t len,
                               kws_net_stream **out);

/* Back to the start of a stream (no frames seen). */
void kws_net_stream_reset(kws_net_stream *s);

/* Push one frame of n_feat float log-mel values. The layers run over the new
 * frames every KWS_NET_BLOCK frames (and when a chunk is due); every
 * chunk_frames frames (after the first window fills) this writes
 * chunk_frames rows of n_phones float log-posteriors to out (which must hold
 * chunk_frames * n_phones floats); *n_out = rows written (0 or chunk_frames).
 * Output row i is the posterior of input frame (rows emitted before) + i;
 * latency is lookahead_frames frames plus the chunking. */
kws_status kws_net_stream_push(kws_net_stream *s, const float *logmel, float *out,
                               uint32_t *n_out);

/* End of stream: emits the posteriors still owed (the last frames), at most
 * chunk_frames rows per call; call until *n_out == 0, after which the stream
 * is reset. */
kws_status kws_net_stream_flush(kws_net_stream *s, float *out, uint32_t *n_out);

#ifdef __cplusplus
}
#endif
#endif /* KWS_NET_H */
