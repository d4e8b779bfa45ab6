/* The network blob (.kwn) linked into flash: make NET=path/to/model.kwn */
    .section .rodata.fw_net_blob, "a"
    .balign 16
    .global fw_net_blob
    .global fw_net_blob_end
fw_net_blob:
    .incbin NET_PATH
fw_net_blob_end:
