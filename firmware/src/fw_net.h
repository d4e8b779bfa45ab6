/*
 * fw_net.h - the firmware's view of the acoustic network: log-mel frames in,
 * per-frame phone log-posteriors out. fw_net.c implements it over kws_net.h
 * when the build has the network (KWS_FW_NET=1); fw_net_none.c says "no
 * network" otherwise, and the firmware then runs the front end and the decoder
 * only (posteriors from a file).
 */
#ifndef FW_NET_H
#define FW_NET_H

#include <stddef.h>
#include <stdint.h>

#include "kws.h"

/* 1 when the build includes the network code. */
int fwnet_compiled(void);
/* The network linked into flash (or NULL, 0). */
const void *fwnet_builtin(size_t *len);
/* Bytes of state a network blob needs (0 if the blob is invalid; *st says why). */
size_t fwnet_need(const void *blob, size_t len, kws_status *st);
/* Parse a network blob (kept in place: it must outlive the network) and build
 * its state in mem[0..cap) (8-byte aligned). On error no network is loaded. */
kws_status fwnet_load(const void *blob, size_t len, void *mem, size_t cap);
int fwnet_loaded(void);
uint32_t fwnet_phone_set_id(void);
uint32_t fwnet_n_phones(void);
/* Bytes of RAM the loaded network uses (stream state + invoke scratch). */
size_t fwnet_ram_bytes(void);
void fwnet_reset(void);
/* Push one log-mel frame; up to cap posterior frames (n_phones floats each) go
 * to out; returns how many (the network's look-ahead delays them). */
uint32_t fwnet_push(const float *feat, float *out, uint32_t cap);
/* End of stream: the posterior frames still owed (call until it returns 0). */
uint32_t fwnet_flush(float *out, uint32_t cap);
/* Most posterior frames one push or flush call can return. */
uint32_t fwnet_max_out(void);
/* The loaded network's [256] table: log-posterior of int8 output v at [v + 128]
 * (every float push/flush returns is one of its entries); NULL when none. */
const float *fwnet_logpost_table(void);

#endif
