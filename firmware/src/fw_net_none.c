/* fw_net_none.c - the firmware built without the acoustic network. */
#include "fw_net.h"

int fwnet_compiled(void) { return 0; }
const void *fwnet_builtin(size_t *len) { *len = 0; return NULL; }
size_t fwnet_need(const void *blob, size_t len, kws_status *st) { (void)blob; (void)len; *st = KWS_ERR_UNSUPPORTED; return 0; }
kws_status fwnet_load(const void *blob, size_t len, void *mem, size_t cap) { (void)blob; (void)len; (void)mem; (void)cap; return KWS_ERR_UNSUPPORTED; }
int fwnet_loaded(void) { return 0; }
uint32_t fwnet_phone_set_id(void) { return 0; }
uint32_t fwnet_n_phones(void) { return 0; }
size_t fwnet_ram_bytes(void) { return 0; }
void fwnet_reset(void) {}
uint32_t fwnet_push(const float *feat, float *out, uint32_t cap) { (void)feat; (void)out; (void)cap; return 0; }
uint32_t fwnet_flush(float *out, uint32_t cap) { (void)out; (void)cap; return 0; }
uint32_t fwnet_max_out(void) { return 0; }
const float *fwnet_logpost_table(void) { return NULL; }
