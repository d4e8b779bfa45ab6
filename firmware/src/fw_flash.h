/*
 * fw_flash.h - keyword models in flash: two slots (A/B) in an emulated NOR
 * flash, the boot-time choice of the newest valid slot (or the built-in default
 * model), and the device side of the serial flashing protocol
 * (docs/flash-protocol.md, framing in kws_core/include/kws_proto.h).
 */
#ifndef FW_FLASH_H
#define FW_FLASH_H

#include <stddef.h>
#include <stdint.h>

#include "kws.h"
#include "kws_proto.h"

#define FW_VERSION "kws-fw 0.2.0"

/* Where the running keyword model came from. */
enum { FW_SRC_NONE = 0, FW_SRC_SLOT_A = 1, FW_SRC_SLOT_B = 2, FW_SRC_BUILTIN = 3, FW_SRC_RAM = 4 };

/* ---- provided by main.c ---- */
/* Phone-set id models must have (0: any), phones per frame (0: no network). */
uint32_t fw_phone_set(void);
uint32_t fw_n_phones(void);
uint32_t fw_max_keywords(void);
/* Bytes of arena the decoder may take. */
uint32_t fw_decoder_room(void);
/* Would this model run here (parse against the phone set, keyword count,
 * decoder size)? KWS_OK or the refusal; *why a fixed message. */
kws_status fw_model_check(const void *data, size_t n, const char **why);
/* Check, then make it the running model (the old one stays when refused). */
kws_status fw_model_use(const void *data, size_t n, int source, const char **why);
/* The running model (NULL when none) and its source. */
const kws_model *fw_model_current(int *source);

/* ---- fw_flash.c ---- */
/* Pick the newest valid slot that runs here, else the built-in model, else
 * none; prints an ACTIVE line. Called at boot and when the phone set changes. */
void fw_slots_activate(void);
/* Handle one protocol frame: reply on the UART. Returns 1 when the host said
 * BYE (nothing else to do), 0 otherwise; RESET does not return. */
int fw_proto_handle(const kws_proto_frame *f);

/* The built-in default model (default_model.c). */
extern const uint32_t fw_default_model[];
extern const uint32_t fw_default_model_size;

#endif
