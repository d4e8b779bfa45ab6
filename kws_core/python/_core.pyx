# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython bindings over the portable C core (kws_core/include/kws.h).

The model bytes are copied once into a malloc'd buffer (aligned, owned by the Python
object) because the C reader uses the file in place and needs 4-byte alignment. The
per-frame work runs with the GIL released; nothing is allocated per frame.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

cdef extern from "kws.h":
    ctypedef int kws_status
    ctypedef struct kws_model:
        uint32_t phone_set_id
        uint16_t n_phones
        uint16_t n_keywords
        uint32_t n_states
        uint16_t frame_shift_ms
    ctypedef struct kws_detection:
        uint32_t keyword
        float score
        uint64_t start_frame
        uint64_t end_frame
    ctypedef struct kws_decoder:
        pass
    const char *kws_status_str(kws_status status)
    uint32_t kws_crc32(uint32_t crc, const void *data, size_t len)
    kws_status kws_model_parse(const void *data, size_t len, uint32_t expected, kws_model *model)
    const char *kws_model_keyword_name(const kws_model *model, uint32_t k)
    size_t kws_decoder_size(const kws_model *model)
    kws_status kws_decoder_init(const kws_model *model, void *mem, size_t len, kws_decoder **out)
    void kws_decoder_reset(kws_decoder *dec)
    kws_status kws_decoder_set_threshold(kws_decoder *dec, uint32_t k, float threshold)
    float kws_decoder_get_threshold(const kws_decoder *dec, uint32_t k)
    uint64_t kws_decoder_frames(const kws_decoder *dec)
    kws_status kws_decoder_process(kws_decoder *dec, const float *logpost, uint32_t n_frames,
                                   kws_detection *out, uint32_t cap, uint32_t *n_done,
                                   uint32_t *n_out, float *scores) nogil
    kws_status kws_decoder_flush(kws_decoder *dec, kws_detection *out, uint32_t cap, uint32_t *n_out)
    float KWS_NO_SCORE


NO_SCORE = KWS_NO_SCORE


class CoreError(ValueError):
    """A status other than KWS_OK from the C core; ``code`` is the kws_status value."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def status_str(int code):
    """The C core's fixed name for a status code."""
    return kws_status_str(code).decode("ascii")


def crc32(const uint8_t[::1] data, uint32_t crc=0):
    """CRC-32 as computed by the C core (must equal zlib.crc32)."""
    if data.shape[0] == 0:
        return kws_crc32(crc, NULL, 0)
    return kws_crc32(crc, &data[0], data.shape[0])


cdef void *_aligned_copy(bytes data) except NULL:
    cdef size_t n = len(data)
    cdef void *buf = malloc(n if n > 0 else 1)
    if buf == NULL:
        raise MemoryError()
    if n:
        memcpy(buf, <const char *>data, n)
    return buf


def validate_model(bytes data, uint32_t expected_phone_set_id=0):
    """Run the C reader over ``data``; return ``(code, message)``, code 0 when valid."""
    cdef kws_model model
    cdef void *buf = _aligned_copy(data)
    cdef kws_status st
    try:
        st = kws_model_parse(buf, len(data), expected_phone_set_id, &model)
    finally:
        free(buf)
    return int(st), status_str(st)


cdef class Decoder:
    """Streaming Viterbi decoder over a keyword model (bytes of a .kwm file).

    ``process(logpost)`` takes a float32 array (frames x n_phones) of log-posteriors and
    returns the detections completed in it as tuples
    ``(keyword, score, start_frame, end_frame)``; frames count from the last reset.
    """

    cdef void *_model_buf
    cdef void *_mem
    cdef kws_model _model
    cdef kws_decoder *_dec
    cdef kws_detection *_out
    cdef uint32_t _cap

    def __cinit__(self, bytes data, uint32_t expected_phone_set_id=0):
        cdef kws_status st
        cdef size_t need
        self._model_buf = _aligned_copy(data)
        st = kws_model_parse(self._model_buf, len(data), expected_phone_set_id, &self._model)
        if st != 0:
            raise CoreError(st, status_str(st))
        need = kws_decoder_size(&self._model)
        self._mem = malloc(need)
        if self._mem == NULL:
            raise MemoryError()
        st = kws_decoder_init(&self._model, self._mem, need, &self._dec)
        if st != 0:
            raise CoreError(st, status_str(st))
        self._cap = self._model.n_keywords * 64
        self._out = <kws_detection *>malloc(self._cap * sizeof(kws_detection))
        if self._out == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._out)
        free(self._mem)
        free(self._model_buf)

    @property
    def n_phones(self):
        return self._model.n_phones

    @property
    def n_keywords(self):
        return self._model.n_keywords

    @property
    def phone_set_id(self):
        return self._model.phone_set_id

    @property
    def frames(self):
        """Frames processed since the last reset."""
        return kws_decoder_frames(self._dec)

    @property
    def state_bytes(self):
        """Bytes of per-stream state (what one more audio stream costs)."""
        return kws_decoder_size(&self._model)

    def keyword_name(self, uint32_t k):
        cdef const char *name = kws_model_keyword_name(&self._model, k)
        if name == NULL:
            raise IndexError(k)
        return name.decode("utf-8")

    def reset(self):
        kws_decoder_reset(self._dec)

    def set_threshold(self, uint32_t k, float threshold):
        cdef kws_status st = kws_decoder_set_threshold(self._dec, k, threshold)
        if st != 0:
            raise CoreError(st, status_str(st))

    def get_threshold(self, uint32_t k):
        if k >= self._model.n_keywords:
            raise IndexError(k)
        return kws_decoder_get_threshold(self._dec, k)

    cdef list _collect(self, uint32_t n):
        cdef uint32_t i
        return [(self._out[i].keyword, self._out[i].score,
                 self._out[i].start_frame, self._out[i].end_frame) for i in range(n)]

    def process(self, const float[:, ::1] logpost, float[:, ::1] scores=None):
        """Decode frames; return the detections they complete.

        If ``scores`` (frames x n_keywords, float32) is given, it receives each frame's
        keyword scores (NO_SCORE where a keyword has no complete path).
        """
        cdef uint32_t n_frames = logpost.shape[0]
        cdef uint32_t done = 0, n_done = 0, n_out = 0
        cdef kws_status st = 0
        cdef const float *x
        cdef float *sc = NULL
        cdef list result = []
        if n_frames == 0:
            return result
        if logpost.shape[1] != self._model.n_phones:
            raise ValueError(f"posteriors have {logpost.shape[1]} columns, the model's phone set "
                             f"has {self._model.n_phones}")
        if scores is not None and (scores.shape[0] != n_frames or
                                   scores.shape[1] != self._model.n_keywords):
            raise ValueError("scores must be frames x n_keywords")
        while done < n_frames:
            x = &logpost[done, 0]
            if scores is not None:
                sc = &scores[done, 0]
            with nogil:
                st = kws_decoder_process(self._dec, x, n_frames - done, self._out, self._cap,
                                         &n_done, &n_out, sc)
            if st != 0:
                raise CoreError(st, status_str(st))
            result.extend(self._collect(n_out))
            done += n_done
        return result

    def flush(self):
        """End of stream: report any pending candidate now."""
        cdef uint32_t n_out = 0
        cdef kws_status st = kws_decoder_flush(self._dec, self._out, self._cap, &n_out)
        if st != 0:
            raise CoreError(st, status_str(st))
        return self._collect(n_out)


cdef extern from "kws_frontend.h":
    ctypedef struct kws_frontend_config:
        uint32_t sample_rate
        uint32_t frame_length
        uint32_t frame_shift
        uint32_t fft_size
        uint32_t n_mels
        float low_freq
        float high_freq
        float energy_floor
        uint32_t level_control
    ctypedef struct kws_frontend:
        pass
    kws_frontend_config kws_frontend_default_config()
    size_t kws_frontend_size(const kws_frontend_config *cfg)
    kws_status kws_frontend_init(const kws_frontend_config *cfg, void *mem, size_t len,
                                 kws_frontend **out)
    void kws_frontend_reset(kws_frontend *fe)
    kws_status kws_frontend_process(kws_frontend *fe, const short *pcm, uint32_t n_samples,
                                    float *feats, uint32_t max_frames, uint32_t *n_consumed,
                                    uint32_t *n_frames) nogil


cdef class FrontEnd:
    """Streaming log-mel front end in C (16 kHz int16 in, frames x n_mels float32 out).

    The same code runs on the device; ``kws.features.log_mel`` is its numpy twin.
    Samples may come in chunks of any size; frames come out as soon as they are whole.
    ``level_control`` (default on, as on the device) lifts quiet speech towards the
    training level (``kws.features.level_control`` is its twin); off gives the raw
    log-mel the networks are trained on.
    """

    cdef void *_mem
    cdef kws_frontend *_fe
    cdef kws_frontend_config _cfg

    def __cinit__(self, bint level_control=True):
        cdef kws_status st
        cdef size_t need
        self._cfg = kws_frontend_default_config()
        self._cfg.level_control = 1 if level_control else 0
        need = kws_frontend_size(&self._cfg)
        self._mem = malloc(need)
        if self._mem == NULL:
            raise MemoryError()
        st = kws_frontend_init(&self._cfg, self._mem, need, &self._fe)
        if st != 0:
            raise CoreError(st, status_str(st))

    def __dealloc__(self):
        free(self._mem)

    @property
    def n_mels(self):
        return self._cfg.n_mels

    @property
    def frame_shift(self):
        return self._cfg.frame_shift

    @property
    def level_control(self):
        return bool(self._cfg.level_control)

    @property
    def frame_length(self):
        return self._cfg.frame_length

    def reset(self):
        kws_frontend_reset(self._fe)

    def process(self, const short[::1] pcm, float[:, ::1] out):
        """Consume ``pcm``; write whole frames into ``out``; return the number written.

        ``out`` must have room for every frame the chunk completes:
        ``(buffered + len(pcm)) // frame_shift + 1`` rows is always enough.
        """
        cdef uint32_t n = pcm.shape[0], used = 0, n_consumed = 0, n_frames = 0, total = 0
        cdef uint32_t cap = out.shape[0]
        cdef kws_status st = 0
        if out.shape[1] != self._cfg.n_mels:
            raise ValueError("out must have n_mels columns")
        while used < n:
            if total >= cap:
                raise ValueError("out has too few rows for this chunk")
            with nogil:
                st = kws_frontend_process(self._fe, &pcm[used], n - used, &out[total, 0],
                                          cap - total, &n_consumed, &n_frames)
            if st != 0:
                raise CoreError(st, status_str(st))
            used += n_consumed
            total += n_frames
        return total


cdef extern from "kws_net.h":
    ctypedef struct kws_net:
        uint32_t phone_set_id
        uint16_t n_phones
        uint16_t n_feat
        uint16_t chunk_frames
        uint16_t context_frames
        uint16_t lookahead_frames
        uint16_t in_frames
        float input_scale
        int input_zero_point
        float output_scale
        int output_zero_point
        uint32_t n_layers
    ctypedef struct kws_net_stream:
        pass
    kws_status kws_net_parse(const uint8_t *blob, size_t len, uint32_t expected, kws_net *net)
    size_t kws_net_scratch_bytes(const kws_net *net)
    kws_status kws_net_invoke(const kws_net *net, const signed char *input, signed char *output,
                              void *scratch, size_t scratch_bytes) nogil
    void kws_net_quantize_frame(const kws_net *net, const float *x, signed char *q) nogil
    size_t kws_net_stream_size(const kws_net *net)
    kws_status kws_net_stream_init(const kws_net *net, void *mem, size_t len, kws_net_stream **out)
    void kws_net_stream_reset(kws_net_stream *s)
    kws_status kws_net_stream_push(kws_net_stream *s, const float *logmel, float *out,
                                   uint32_t *n_out) nogil
    kws_status kws_net_stream_flush(kws_net_stream *s, float *out, uint32_t *n_out) nogil


def validate_net(bytes data, uint32_t expected_phone_set_id=0):
    """Run the C net-blob reader over ``data``; return ``(code, message)``, code 0 when valid."""
    cdef kws_net net
    cdef void *buf = _aligned_copy(data)
    cdef kws_status st
    try:
        st = kws_net_parse(<const uint8_t *>buf, len(data), expected_phone_set_id, &net)
    finally:
        free(buf)
    return int(st), status_str(st)


cdef class Net:
    """The int8 acoustic network in C, over a .kwn blob (tools/export_net.py).

    ``invoke(x)`` is one TFLite invoke: int8 [in_frames, n_feat] (or [1, ...]) in,
    int8 [chunk_frames, n_phones] out, bit-identical to TFLite's reference kernels.
    """

    cdef void *_buf
    cdef void *_scratch
    cdef size_t _scratch_bytes
    cdef kws_net _net

    def __cinit__(self, bytes data, uint32_t expected_phone_set_id=0):
        cdef kws_status st
        self._buf = _aligned_copy(data)
        st = kws_net_parse(<const uint8_t *>self._buf, len(data), expected_phone_set_id, &self._net)
        if st != 0:
            raise CoreError(st, status_str(st))
        self._scratch_bytes = kws_net_scratch_bytes(&self._net)
        self._scratch = malloc(self._scratch_bytes if self._scratch_bytes else 1)
        if self._scratch == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._scratch)
        free(self._buf)

    @property
    def phone_set_id(self): return self._net.phone_set_id
    @property
    def n_phones(self): return self._net.n_phones
    @property
    def n_feat(self): return self._net.n_feat
    @property
    def chunk_frames(self): return self._net.chunk_frames
    @property
    def context_frames(self): return self._net.context_frames
    @property
    def lookahead_frames(self): return self._net.lookahead_frames
    @property
    def in_frames(self): return self._net.in_frames
    @property
    def n_layers(self): return self._net.n_layers
    @property
    def input_quantization(self): return (self._net.input_scale, self._net.input_zero_point)
    @property
    def output_quantization(self): return (self._net.output_scale, self._net.output_zero_point)
    @property
    def scratch_bytes(self): return self._scratch_bytes

    def invoke(self, x):
        """int8 [in_frames, n_feat] -> int8 [chunk_frames, n_phones] (numpy arrays)."""
        import numpy as np
        arr = np.ascontiguousarray(x, dtype=np.int8)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != (self._net.in_frames, self._net.n_feat):
            raise ValueError(f"input must be int8 [{self._net.in_frames}, {self._net.n_feat}], got shape {arr.shape}")
        out = np.empty((self._net.chunk_frames, self._net.n_phones), np.int8)
        cdef const signed char[:, ::1] xin = arr
        cdef signed char[:, ::1] yout = out
        cdef kws_status st
        with nogil:
            st = kws_net_invoke(&self._net, &xin[0, 0], &yout[0, 0], self._scratch, self._scratch_bytes)
        if st != 0:
            raise CoreError(st, status_str(st))
        return out

    def quantize(self, feats):
        """float log-mel [n, n_feat] -> int8, as the stream (and kws/acoustic.py) quantise."""
        import numpy as np
        arr = np.ascontiguousarray(feats, dtype=np.float32).reshape(-1, self._net.n_feat)
        out = np.empty(arr.shape, np.int8)
        cdef const float[:, ::1] xin = arr
        cdef signed char[:, ::1] q = out
        cdef Py_ssize_t i
        for i in range(arr.shape[0]):
            kws_net_quantize_frame(&self._net, &xin[i, 0], &q[i, 0])
        return out


cdef class NetStream:
    """kws/acoustic.py's AcousticStream in C: float log-mel frames in, float32
    log-posteriors out, one row per input frame (``lookahead_frames`` late)."""

    cdef Net _owner
    cdef void *_mem
    cdef kws_net_stream *_s

    def __cinit__(self, Net net):
        cdef kws_status st
        cdef size_t need = kws_net_stream_size(&net._net)
        self._owner = net
        self._mem = malloc(need)
        if self._mem == NULL:
            raise MemoryError()
        st = kws_net_stream_init(&net._net, self._mem, need, &self._s)
        if st != 0:
            raise CoreError(st, status_str(st))

    def __dealloc__(self):
        free(self._mem)

    def reset(self):
        kws_net_stream_reset(self._s)

    def push(self, feats):
        """float log-mel [n, n_feat] -> float32 log-posteriors [m, n_phones] now available."""
        import numpy as np
        cdef uint32_t nf = self._owner._net.n_feat, chunk = self._owner._net.chunk_frames
        arr = np.ascontiguousarray(feats, dtype=np.float32).reshape(-1, nf)
        cdef Py_ssize_t n = arr.shape[0]
        out = np.empty(((n // chunk + 1) * chunk, self._owner._net.n_phones), np.float32)
        cdef const float[:, ::1] x = arr
        cdef float[:, ::1] y = out
        cdef Py_ssize_t i
        cdef uint32_t total = 0, n_out = 0
        cdef kws_status st = 0
        with nogil:
            for i in range(n):
                st = kws_net_stream_push(self._s, &x[i, 0], &y[total, 0], &n_out)
                if st != 0:
                    break
                total += n_out
        if st != 0:
            raise CoreError(st, status_str(st))
        return out[:total]

    def flush(self):
        """The posteriors still owed at the end of the stream; then reset."""
        import numpy as np
        cdef uint32_t chunk = self._owner._net.chunk_frames
        cdef uint32_t n_out = 0
        cdef kws_status st
        cdef float[:, ::1] y
        parts = []
        while True:
            block = np.empty((chunk, self._owner._net.n_phones), np.float32)
            y = block
            with nogil:
                st = kws_net_stream_flush(self._s, &y[0, 0], &n_out)
            if st != 0:
                raise CoreError(st, status_str(st))
            if n_out == 0:
                break
            parts.append(block[:n_out])
        if not parts:
            return np.zeros((0, self._owner._net.n_phones), np.float32)
        return np.concatenate(parts)
