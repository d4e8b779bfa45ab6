/*
 * default_model.c - the keyword model compiled into the firmware (generated).
 *
 * The device runs it when neither flash slot holds a valid model for its phone
 * set (fw_flash.c), so it never ends up without a keyword model. It is
 * `kws-enroll 'hey jarvis' --lang en` (456 bytes, phone set en-v1, one
 * keyword). Regenerate for another wake word or phone set with
 *   kws-enroll 'hey jarvis' --lang en -o d.kwm
 *   python -c "import sys, kws.flash as f; print(f.default_model_c(open('d.kwm','rb').read()))" \
 *       > firmware/src/default_model.c
 * Stored as 32-bit little-endian words so that it is aligned for kws_model_parse.
 */
#include <stdint.h>

#include "fw_flash.h"

const uint32_t fw_default_model_size = 456u;
const uint32_t fw_default_model[114] = {
    0x4d53574bu, 0x00000001u, 0x000001c8u, 0xf49f13d1u, 0x12d221d3u, 0x00010028u,
    0x0000001du, 0x0000001eu, 0x00000040u, 0x00000060u, 0x00000148u, 0x00000184u,
    0x00000041u, 0x0064000au, 0x00000014u, 0xc0c00000u, 0x00000000u, 0x0035000au,
    0x0000000bu, 0x00000000u, 0x0000001du, 0xbea0473bu, 0x000000e6u, 0x3f000000u,
    0x00030010u, 0x00000000u, 0x01010010u, 0x00000000u, 0x0101000du, 0x00000001u,
    0x0101000du, 0x00000002u, 0x01010000u, 0x00000003u, 0x02010013u, 0x00000004u,
    0x01010013u, 0x00000006u, 0x01010001u, 0x00000007u, 0x01010001u, 0x00000008u,
    0x0101001cu, 0x00000009u, 0x0101001cu, 0x0000000au, 0x01010023u, 0x0000000bu,
    0x01010023u, 0x0000000cu, 0x01010003u, 0x0000000du, 0x01010003u, 0x0000000eu,
    0x0101001du, 0x0000000fu, 0x0105001du, 0x00000010u, 0x02010013u, 0x00000011u,
    0x01010013u, 0x00000013u, 0x01010001u, 0x00000014u, 0x01010001u, 0x00000015u,
    0x0101001cu, 0x00000016u, 0x0101001cu, 0x00000017u, 0x01010023u, 0x00000018u,
    0x01010023u, 0x00000019u, 0x01010011u, 0x0000001au, 0x01010011u, 0x0000001bu,
    0x0101001du, 0x0000001cu, 0x0105001du, 0x0000001du, 0x00010000u, 0x00030002u,
    0x00040003u, 0x00060005u, 0x00080007u, 0x000a0009u, 0x000c000bu, 0x000e000du,
    0x0003000fu, 0x00110004u, 0x00130012u, 0x00150014u, 0x00170016u, 0x00190018u,
    0x001b001au, 0x20796568u, 0x7672616au, 0x68007369u, 0x6a207965u, 0x69767261u,
    0x48203a73u, 0x59452048u, 0x28207c20u, 0x4120484au, 0x20522041u, 0x48412056u,
    0x2f205320u, 0x20484a20u, 0x52204141u, 0x49205620u, 0x29532048u, 0x00000000u,
};
