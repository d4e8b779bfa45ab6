/* fw_net.c - the acoustic network on the device: kws_net.h's stream in a static arena. */
#include "fw_net.h"

#include "kws_net.h"

static kws_net net;
static kws_net_stream *stream;
static size_t net_need;

#ifdef FW_NET_BUILTIN
extern const uint8_t fw_net_blob[], fw_net_blob_end[];
const void *fwnet_builtin(size_t *len)
{
    *len = (size_t)(fw_net_blob_end - fw_net_blob);
    return fw_net_blob;
}
#else
const void *fwnet_builtin(size_t *len)
{
    *len = 0;
    return NULL;
}
#endif

int fwnet_compiled(void) { return 1; }

size_t fwnet_need(const void *blob, size_t len, kws_status *st)
{
    kws_net tmp;
    *st = kws_net_parse((const uint8_t *)blob, len, 0u, &tmp);
    if (*st != KWS_OK) return 0;
    if (tmp.n_feat != 40u || tmp.n_phones == 0u) {
        *st = KWS_ERR_UNSUPPORTED; /* the front end gives 40 log-mel bands */
        return 0;
    }
    return kws_net_stream_size(&tmp);
}

kws_status fwnet_load(const void *blob, size_t len, void *mem, size_t cap)
{
    kws_status st;
    stream = NULL;
    net_need = fwnet_need(blob, len, &st);
    if (st != KWS_OK) return st;
    if (net_need == 0u || net_need > cap) return KWS_ERR_NOMEM;
    st = kws_net_parse((const uint8_t *)blob, len, 0u, &net);
    if (st != KWS_OK) return st;
    st = kws_net_stream_init(&net, mem, cap, &stream);
    if (st != KWS_OK) stream = NULL;
    return st;
}

int fwnet_loaded(void) { return stream != NULL; }
uint32_t fwnet_phone_set_id(void) { return stream ? net.phone_set_id : 0u; }
uint32_t fwnet_n_phones(void) { return stream ? net.n_phones : 1u; }
size_t fwnet_ram_bytes(void) { return net_need; }
uint32_t fwnet_max_out(void) { return stream ? net.chunk_frames : 0u; }
const float *fwnet_logpost_table(void) { return stream ? net.logpost : NULL; }

void fwnet_reset(void)
{
    if (stream) kws_net_stream_reset(stream);
}

uint32_t fwnet_push(const float *feat, float *out, uint32_t cap)
{
    uint32_t n = 0;
    if (!stream || cap < net.chunk_frames) return 0;
    if (kws_net_stream_push(stream, feat, out, &n) != KWS_OK) return 0;
    return n;
}

uint32_t fwnet_flush(float *out, uint32_t cap)
{
    uint32_t n = 0;
    if (!stream || cap < net.chunk_frames) return 0;
    if (kws_net_stream_flush(stream, out, &n) != KWS_OK) return 0;
    return n;
}
