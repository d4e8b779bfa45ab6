# frontend.mk - build and run the log-mel front end's C tests.
#
# Standalone:   make -C kws_core/tests -f frontend.mk frontend-test frontend-sanitize
# Included:     include frontend.mk   (from any Makefile; paths are relative to this file)
#
# Targets:
#   frontend-test      -O2 build of test_frontend, run it
#   frontend-sanitize  ASan + UBSan build, run it
#   frontend-cxx       compile kws_frontend.c and the tests as C++ (header/C++ compatibility)
#   frontend-bench     time the front end (seconds of audio per CPU second)
#   frontend-clean     remove this fragment's build outputs
#
# Outputs go to $(FE_BUILD): $(BUILD) when the including Makefile sets it, else ./build
# next to this file (ignored by git). Variables are FE_-prefixed so as not to clash with
# the including Makefile's; this fragment does not change the default goal.

FE_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

FE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
FE_CORE := $(FE_DIR)/..
FE_BUILD ?= $(if $(BUILD),$(BUILD),$(FE_DIR)/build)

FE_CC ?= $(if $(filter default,$(origin CC)),gcc,$(CC))
FE_CXX ?= $(if $(filter default,$(origin CXX)),g++,$(CXX))
FE_WARN := -Wall -Wextra -Wpedantic -Werror
FE_CFLAGS ?= -std=c99 -O2 $(FE_WARN)
FE_SANFLAGS ?= -std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all $(FE_WARN)
FE_INC := -I$(FE_CORE)/include
FE_LIB_SRC := $(FE_CORE)/src/kws_frontend.c
FE_HDR := $(FE_CORE)/include/kws_frontend.h $(FE_CORE)/include/kws.h

.PHONY: frontend-test frontend-sanitize frontend-cxx frontend-bench frontend-clean

frontend-test: $(FE_BUILD)/test_frontend
	$(FE_BUILD)/test_frontend

frontend-sanitize: $(FE_BUILD)/test_frontend_san
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(FE_BUILD)/test_frontend_san

frontend-cxx:
	@mkdir -p $(FE_BUILD)
	$(FE_CXX) -x c++ -std=c++11 -O2 $(FE_WARN) $(FE_INC) -c $(FE_LIB_SRC) -o $(FE_BUILD)/kws_frontend_cxx.o
	$(FE_CXX) -x c++ -std=c++11 -O2 $(FE_WARN) $(FE_INC) \
	    -c $(FE_DIR)/test_frontend.c -o $(FE_BUILD)/test_frontend_cxx.o

frontend-bench: $(FE_BUILD)/frontend_dump
	$(FE_BUILD)/frontend_dump --bench 600

$(FE_BUILD)/test_frontend: $(FE_DIR)/test_frontend.c $(FE_LIB_SRC) $(FE_HDR)
	@mkdir -p $(@D)
	$(FE_CC) $(FE_CFLAGS) $(FE_INC) $(FE_DIR)/test_frontend.c $(FE_LIB_SRC) -o $@ -lm

$(FE_BUILD)/test_frontend_san: $(FE_DIR)/test_frontend.c $(FE_LIB_SRC) $(FE_HDR)
	@mkdir -p $(@D)
	$(FE_CC) $(FE_SANFLAGS) $(FE_INC) $(FE_DIR)/test_frontend.c $(FE_LIB_SRC) -o $@ -lm

$(FE_BUILD)/frontend_dump: $(FE_DIR)/frontend_dump.c $(FE_LIB_SRC) $(FE_HDR)
	@mkdir -p $(@D)
	$(FE_CC) $(FE_CFLAGS) $(FE_INC) $(FE_DIR)/frontend_dump.c $(FE_LIB_SRC) -o $@ -lm

frontend-clean:
	rm -f $(FE_BUILD)/test_frontend $(FE_BUILD)/test_frontend_san $(FE_BUILD)/frontend_dump \
	      $(FE_BUILD)/kws_frontend_cxx.o $(FE_BUILD)/test_frontend_cxx.o

.DEFAULT_GOAL := $(FE_SAVED_DEFAULT_GOAL)
