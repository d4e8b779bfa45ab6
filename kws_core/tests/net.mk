# net.mk - build and run the acoustic-network (kws_net.c) C tests.
#
# Standalone:   make -C kws_core/tests -f net.mk net-test net-sanitize
# Included:     include net.mk
#
# Targets:
#   net-test      -O2 build of test_net, run it
#   net-sanitize  ASan + UBSan build, run it
#   net-cxx       compile kws_net.c as C++ (header/C++ compatibility)
#   net-m4        optional: the same tests built for Cortex-M4F (arm-none-eabi-gcc) and run
#                 in QEMU mps2-an386 with semihosting; borrows firmware/src/startup.c,
#                 board.c and firmware/mps2_an386.ld (not part of test / sanitize); this
#                 runs the stream's SMLAD kernels (__ARM_FEATURE_DSP) against the reference
#                 window; NET_M4_DEFS=-DKWS_NET_BLOCK=1u (or 3u) exercises other block sizes
#   net-clean
#
# The tests read tests/data/net_ko16.kwn and net_ko16_ref.bin (committed fixtures,
# made by tools/make_test_net_model.py). Variables are NET_-prefixed.

NET_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

NET_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
NET_CORE := $(NET_DIR)/..
NET_BUILD ?= $(if $(BUILD),$(BUILD),$(NET_DIR)/build)
NET_DATA := $(abspath $(NET_DIR)/../../tests/data)

NET_CC ?= $(if $(filter default,$(origin CC)),gcc,$(CC))
NET_CXX ?= $(if $(filter default,$(origin CXX)),g++,$(CXX))
NET_WARN := -Wall -Wextra -Wpedantic -Werror
NET_CFLAGS ?= -std=c99 -O2 $(NET_WARN)
NET_SANFLAGS ?= -std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all $(NET_WARN)
NET_INC := -I$(NET_CORE)/include -DKWS_NET_DATA='"$(NET_DATA)"'
NET_LIB_SRC := $(NET_CORE)/src/kws_net.c $(NET_CORE)/src/kws_model.c
NET_HDR := $(NET_CORE)/include/kws_net.h $(NET_CORE)/include/kws.h

NET_M4_CC ?= arm-none-eabi-gcc
NET_M4_QEMU ?= qemu-system-arm
NET_FW := $(NET_DIR)/../../firmware
NET_M4_CPU := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
# extra defines for the M4 build, e.g. NET_M4_DEFS=-DKWS_NET_BLOCK=3u (stream block size)
NET_M4_DEFS ?=

.PHONY: net-test net-sanitize net-cxx net-m4 net-clean

net-test: $(NET_BUILD)/test_net net-cxx
	$(NET_BUILD)/test_net

net-sanitize: $(NET_BUILD)/test_net_san
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(NET_BUILD)/test_net_san

net-cxx:
	@mkdir -p $(NET_BUILD)
	$(NET_CXX) -x c++ -std=c++11 -O2 $(NET_WARN) $(NET_INC) -c $(NET_CORE)/src/kws_net.c \
	    -o $(NET_BUILD)/kws_net_cxx.o

$(NET_BUILD)/test_net: $(NET_DIR)/test_net.c $(NET_LIB_SRC) $(NET_HDR)
	@mkdir -p $(@D)
	$(NET_CC) $(NET_CFLAGS) $(NET_INC) $(NET_DIR)/test_net.c $(NET_LIB_SRC) -o $@ -lm

$(NET_BUILD)/test_net_san: $(NET_DIR)/test_net.c $(NET_LIB_SRC) $(NET_HDR)
	@mkdir -p $(@D)
	$(NET_CC) $(NET_SANFLAGS) $(NET_INC) $(NET_DIR)/test_net.c $(NET_LIB_SRC) -o $@ -lm

net-m4:
	@mkdir -p $(NET_BUILD)
	$(NET_M4_CC) $(NET_M4_CPU) -std=c99 -O2 $(NET_WARN) $(NET_INC) $(NET_M4_DEFS) -Dmain=test_main \
	    -c $(NET_DIR)/test_net.c -o $(NET_BUILD)/test_net_m4.o
	$(NET_M4_CC) $(NET_M4_CPU) -std=c99 -O2 $(NET_M4_DEFS) -I$(NET_CORE)/include -I$(NET_FW)/src \
	    $(NET_BUILD)/test_net_m4.o $(NET_LIB_SRC) $(NET_FW)/src/startup.c $(NET_FW)/src/board.c \
	    $(NET_DIR)/net_m4_shim.c -T $(NET_FW)/mps2_an386.ld -Wl,--defsym=RAM_SIZE=4M \
	    -Wl,--defsym=STACK_SIZE=16K -Wl,--defsym=FLASH_SIZE=1M -Wl,--defsym=end=__bss_end__ \
	    -nostartfiles --specs=nano.specs --specs=rdimon.specs -lm -o $(NET_BUILD)/test_net_m4.elf
	$(NET_M4_QEMU) -M mps2-an386 -nographic -monitor none -serial null \
	    -semihosting-config enable=on,target=native -kernel $(NET_BUILD)/test_net_m4.elf

net-clean:
	rm -f $(NET_BUILD)/test_net $(NET_BUILD)/test_net_san $(NET_BUILD)/kws_net_cxx.o \
	      $(NET_BUILD)/test_net_m4.o $(NET_BUILD)/test_net_m4.elf

.DEFAULT_GOAL := $(NET_SAVED_DEFAULT_GOAL)
