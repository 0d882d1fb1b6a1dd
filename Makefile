# libdpt — build, test, install.
#   make              library + programs (build/)
#   make test         everything: C unit tests (optimised and ASan/UBSan), Python tests, parity
#   make demo         run dpt-generate on the bundled demo model and speech clip
#   make bench        benchmarks against the PyTorch reference
#   make install PREFIX=/usr/local
#   make deps         install missing Debian packages and the Python venv (.venv)

PREFIX  ?= /usr/local
BUILD   ?= build
CC      ?= cc
PYTHON_VENV := .venv
PY      := $(PYTHON_VENV)/bin/python

OPT     ?= -O2
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
               -Iinclude -Ilib -Ikernels -fPIC
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS) $(EXTRA_CFLAGS)

PKGS    := sndfile soxr zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BLAS_CFLAGS := -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/openblas -DDPT_HAVE_OPENBLAS_THREADS
BLAS_LIBS   := -lopenblas
LIBS    := $(PKG_LIBS) $(BLAS_LIBS) -lpthread -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

LIB_SRC    := $(wildcard lib/*.c)
KERNEL_SRC := $(wildcard kernels/*.c)
PROGRAMS   := $(patsubst examples/%.c,%,$(wildcard examples/dpt-*.c))
C_TESTS    := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
HARNESSES  := $(patsubst tests/%.c,%,$(wildcard tests/harness_*.c))

LIB_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC) $(KERNEL_SRC))
# shared code of the programs (examples/cli/*.c), linked into each of them
CLI_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard examples/cli/*.c))

.PHONY: FORCE all clean test test-c test-asan test-python install demo bench deps venv
all: $(BUILD)/libdpt.a $(addprefix $(BUILD)/,$(PROGRAMS)) $(BUILD)/dpt.pc

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h lib/*.h kernels/*.h examples/cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PKG_CFLAGS) $(BLAS_CFLAGS) -c $< -o $@

$(BUILD)/libdpt.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/dpt-%: $(BUILD)/obj/examples/dpt-%.o $(CLI_OBJ) $(BUILD)/libdpt.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CLI_OBJ) $(BUILD)/libdpt.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libdpt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libdpt.a $(CHECK_LIBS) $(LIBS)

FORCE:
# regenerated every time: it records PREFIX
$(BUILD)/dpt.pc: FORCE
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: dpt\nDescription: DiffPoseTalk inference in C\nVersion: 0.1.0\nCflags: -I$${includedir}\nLibs: -L$${libdir} -ldpt %s\nRequires: sndfile soxr zlib\n' \
	  '$(PREFIX)' '$(BLAS_LIBS) -lpthread -lm' > $@

test-c: all $(addprefix $(BUILD)/tests/,$(C_TESTS) $(HARNESSES))
	@tools/run_c_tests.sh $(BUILD) $(C_TESTS)

# The same C tests built with AddressSanitizer + UBSan into build-asan/.
test-asan:
	$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test-c

test-python: all $(addprefix $(BUILD)/tests/,$(HARNESSES))
	@DPT_BUILD=$(BUILD) $(PY) -m pytest -q -p no:cacheprovider tests/python

test: deps
	@tools/run_all_tests.sh

demo: deps all
	@tools/demo.sh

bench: deps all
	@$(PY) tools/bench.py

deps:
	@tools/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/dpt.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libdpt.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(BUILD)/dpt.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(addprefix $(BUILD)/,$(PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-asan
