# libdpt — build, test, install.
#   make              library + programs (build/)
#   make test         everything: C unit tests (optimised and ASan/UBSan), Python tests, parity
#   make test-python-pkg  the dpt Python package (python/) installed into a fresh venv, and its tests
#   make demo         run dpt-generate on the bundled demo model and speech clip
#   make bench        benchmarks against the PyTorch reference
#   make install PREFIX=/usr/local
#   make deps         install missing Debian packages and the Python venv (.venv)
#   make bench-gemm   own SGEMM vs BLAS GFLOP/s at the models' shapes
#   make bench-kernels  SIMD vs scalar element-wise kernels
#   make fuzz         run every libFuzzer target (tests/fuzz/) for FUZZ_SECONDS (default 60) with clang;
#                     make fuzz-short: 15 s each (part of make test); make test-fuzz-regress: replay
#                     the seed corpora and kept crashers through the ASan build (part of make test)
#   make soak         1000 batch jobs (some failing) in one dpt-generate process: memory flat, no
#                     descriptor leak, outputs equal to single runs (tools/soak.py); make soak-short:
#                     100 jobs (part of make test)
#   make test-aarch64   cross-build for aarch64 and run the C tests under qemu (tools/test_aarch64.sh;
#                     part of `make test`; exit 77 = skipped when it cannot install its tools)
# Build variants (combinable; each gets its own build directory unless BUILD is given):
#   BLAS=none         no OpenBLAS: GEMMs on the own blocked SGEMM (kernels/gemm*.c)
#   NO_SNDFILE=1      no libsndfile/libsoxr: file decoding and resampling return DPT_ERR_UNSUPPORTED
#   NO_IMAGE=1        no libpng/libjpeg: image reading/writing (textures, PNG frames) return
#                     DPT_ERR_UNSUPPORTED; rendering itself works
#   CROSS=aarch64-linux-gnu-   cross-compile (Debian's gcc-aarch64-linux-gnu, arm64 multiarch libs);
#                     tools/test_aarch64.sh runs the C tests under qemu
#   STATIC=1          fully static programs; implies BLAS=none NO_SNDFILE=1 unless given (Debian
#                     ships no static libsndfile/libsoxr; its static libpng/libjpeg do link)

PREFIX  ?= /usr/local
CC      ?= cc
AR      ?= ar
ifneq ($(CROSS),)
CC      := $(CROSS)gcc
AR      := $(CROSS)ar
endif
ifneq ($(STATIC),)
BLAS       ?= none
NO_SNDFILE ?= 1
endif
BLAS    ?= openblas
# target triplet, e.g. x86_64-linux-gnu, aarch64-linux-gnu
MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)
VARIANT := $(if $(CROSS),-$(MACHINE))$(if $(filter none,$(BLAS)),-noblas)$(if $(NO_SNDFILE),-nosndfile)$(if $(NO_IMAGE),-noimage)$(if $(STATIC),-static)
BUILD   ?= build$(VARIANT)
PYTHON_VENV := .venv
PY      := $(PYTHON_VENV)/bin/python

# the version, from include/dpt.h
VERSION := $(shell sed -n -E 's/^\#define DPT_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+).*/\2/p' include/dpt.h | paste -sd.)
VERSION_MAJOR := $(firstword $(subst ., ,$(VERSION)))

OPT     ?= -O2
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
               -Iinclude -fPIC
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS) $(EXTRA_CFLAGS)

# pkg-config of the target: the host's, or the cross one (aarch64-linux-gnu-pkg-config if
# installed, else pkg-config restricted to the target's multiarch directory)
ifeq ($(CROSS),)
PKG_CONFIG ?= pkg-config
else
PKG_CONFIG ?= $(if $(shell command -v $(CROSS)pkg-config),$(CROSS)pkg-config,PKG_CONFIG_LIBDIR=/usr/lib/$(MACHINE)/pkgconfig:/usr/share/pkgconfig pkg-config)
endif
PKG_STATIC := $(if $(STATIC),--static)
LDFLAGS ?=
ifneq ($(STATIC),)
LDFLAGS += -static
endif

PKGS    := $(if $(NO_SNDFILE),,sndfile soxr )$(if $(NO_IMAGE),,libpng libjpeg )zlib
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)$(if $(NO_SNDFILE), -DDPT_NO_SNDFILE)$(if $(NO_IMAGE), -DDPT_NO_IMAGE)
PKG_LIBS   := $(shell $(PKG_CONFIG) $(PKG_STATIC) --libs $(PKGS) 2>/dev/null)
# A package pkg-config cannot find would drop its flags silently and fail later at link time: say
# which, and what to install (not for the goals that install them first or build nothing).
PKG_MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo y),,$(p))))
# a missing (cross) compiler leaves MACHINE empty and every package "missing": name the compiler
ifeq ($(MACHINE),)
ifneq ($(filter-out deps venv clean test demo bench test-aarch64,$(or $(MAKECMDGOALS),all)),)
$(error $(CC) not found$(if $(CROSS),: install the cross compiler (apt-get install gcc-$(patsubst %-,%,$(CROSS))),: install a C compiler (make deps does)))
endif
endif
ifneq ($(PKG_MISSING),)
ifeq ($(filter-out deps venv clean test demo bench test-aarch64 fuzz fuzz-short test-asan test-fuzz-regress,$(or $(MAKECMDGOALS),all)),)
else
DEB_ARCH := $(if $(CROSS),:$(patsubst aarch64,arm64,$(firstword $(subst -, ,$(MACHINE)))))
DEB_OF_sndfile := libsndfile1-dev
DEB_OF_soxr := libsoxr-dev
DEB_OF_libpng := libpng-dev
DEB_OF_libjpeg := libjpeg62-turbo-dev
DEB_OF_zlib := zlib1g-dev
$(error $(PKG_CONFIG) finds no $(PKG_MISSING) for $(MACHINE); install $(foreach p,$(PKG_MISSING),$(DEB_OF_$(p))$(DEB_ARCH))$(if $(CROSS),, (make deps does)), or build without them (NO_SNDFILE=1 / NO_IMAGE=1; zlib is required))
endif
endif

ifeq ($(BLAS),none)
BLAS_CFLAGS :=
BLAS_LIBS   :=
else
BLAS_CFLAGS := -I/usr/include/$(MACHINE)/openblas-pthread -I/usr/include/openblas -DDPT_HAVE_CBLAS -DDPT_HAVE_OPENBLAS_THREADS
BLAS_LIBS   := -lopenblas
endif
LIBS    := $(PKG_LIBS) $(BLAS_LIBS) -lpthread -lm
CHECK_LIBS := $(shell $(PKG_CONFIG) $(PKG_STATIC) --libs check 2>/dev/null)

# Per-file SIMD flags: only these objects may contain AVX2/FMA/F16C/AVX512 (x86-64) or BF16 (aarch64)
# instructions (the CPU is checked at run time before they are called); NEON is baseline on aarch64.
ifneq ($(filter x86_64%,$(MACHINE)),)
$(BUILD)/obj/kernels/avx2.o $(BUILD)/obj/kernels/gemm_avx2.o: KERNEL_FLAGS := -mavx2 -mfma -mf16c
$(BUILD)/obj/kernels/gemm_avx512bf16.o: KERNEL_FLAGS := -mavx512f -mavx512bw -mavx512bf16
$(BUILD)/obj/kernels/gemm_avx512vnni.o: KERNEL_FLAGS := -mavx512f -mavx512bw -mavx512vnni
endif
# aarch64: the BFMMLA kernel alone may use FEAT_BF16 (gemm_bf16.c checks HWCAP2_BF16 first);
# without the pre-allocation scheduler, which hoists all 6 A loads and spills 3 accumulators
ifneq ($(filter aarch64%,$(MACHINE)),)
$(BUILD)/obj/kernels/gemm_neon_bf16.o: KERNEL_FLAGS := -march=armv8.2-a+bf16 -fno-schedule-insns
# the int8 kernels alone may use FEAT_DotProd (+i8mm on one function; gemm_int8.c checks the HWCAPs)
$(BUILD)/obj/kernels/gemm_neon_int8.o: KERNEL_FLAGS := -march=armv8.2-a+dotprod -fno-schedule-insns
endif

# The renderer's shading loop is written for the vectoriser (-O3 vectorises it at the baseline ISA;
# -fno-math-errno lets sqrtf be one instruction, -fno-trapping-math lets it compute both sides of
# the clamps; neither changes a value).
$(BUILD)/obj/lib/render.o: KERNEL_FLAGS := -O3 -fno-math-errno -fno-trapping-math

LIB_SRC    := $(wildcard lib/*.c)
KERNEL_SRC := $(wildcard kernels/*.c)
PROGRAMS   := $(patsubst examples/%.c,%,$(wildcard examples/dpt-*.c))
# NO_SNDFILE=1 leaves out the tests and harnesses that use libsndfile/libsoxr themselves
NEEDS_SNDFILE := $(if $(NO_SNDFILE),$(patsubst tests/%.c,%,$(shell grep -l -E '<(sndfile|soxr)\.h>' tests/*.c 2>/dev/null)))
C_TESTS    := $(filter-out $(NEEDS_SNDFILE),$(patsubst tests/%.c,%,$(wildcard tests/test_*.c)))
HARNESSES  := $(filter-out $(NEEDS_SNDFILE),$(patsubst tests/%.c,%,$(wildcard tests/harness_*.c)))

LIB_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC) $(KERNEL_SRC))
# shared code of the programs (examples/cli/*.c), linked into each of them
CLI_OBJ    := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard examples/cli/*.c))

.PHONY: soak soak-short test-tsan test-valgrind fuzz fuzz-short fuzz-bins test-fuzz-regress FORCE all clean test test-c tests-build test-asan test-python test-aarch64 install demo bench bench-gemm bench-kernels deps venv
all: $(BUILD)/libdpt.a $(if $(STATIC),,$(BUILD)/libdpt.so) $(addprefix $(BUILD)/,$(PROGRAMS)) $(BUILD)/dpt.pc

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h lib/*.h kernels/*.h examples/cli/*.h tests/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(INTERNAL_INC) $(KERNEL_FLAGS) $(VISIBILITY) $(PKG_CFLAGS) $(BLAS_CFLAGS) -c $< -o $@

# Internal headers: the library, the kernels and the tests see them; the programs in examples/
# are built against the public header alone.
$(BUILD)/obj/lib/%.o $(BUILD)/obj/kernels/%.o $(BUILD)/obj/tests/%.o: INTERNAL_INC := -Ilib -Ikernels

# the library's objects export only what include/dpt.h declares (its visibility pragma)
$(LIB_OBJ): VISIBILITY := -fvisibility=hidden

$(BUILD)/libdpt.so: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libdpt.so.$(VERSION_MAJOR) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libdpt.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/dpt-%: $(BUILD)/obj/examples/dpt-%.o $(CLI_OBJ) $(BUILD)/libdpt.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(CLI_OBJ) $(BUILD)/libdpt.a $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libdpt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libdpt.a $(CHECK_LIBS) $(LIBS)

# suites of the programs' shared code (examples/cli/): linked with it
$(BUILD)/tests/test_cli_%: $(BUILD)/obj/tests/test_cli_%.o $(CLI_OBJ) $(BUILD)/libdpt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(CLI_OBJ) $(BUILD)/libdpt.a $(CHECK_LIBS) $(LIBS)

FORCE:
# regenerated every time: it records PREFIX
$(BUILD)/dpt.pc: FORCE
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: dpt\nDescription: DiffPoseTalk inference in C\nVersion: $(VERSION)\nCflags: -I$${includedir}\nLibs: -L$${libdir} -ldpt %s\nRequires: %s\n' \
	  '$(PREFIX)' '$(BLAS_LIBS) -lpthread -lm' '$(PKGS)' > $@

test-c: all $(addprefix $(BUILD)/tests/,$(C_TESTS) $(HARNESSES))
	@tools/run_c_tests.sh $(BUILD) $(C_TESTS)
	@$(if $(STATIC),,tools/check_exports.sh $(BUILD)/libdpt.so include/dpt.h)
	@tools/check_kernel_deps.sh $(BUILD) $(CROSS)nm

# C tests only built (e.g. for aarch64: tools/test_aarch64.sh runs them under qemu)
tests-build: all $(addprefix $(BUILD)/tests/,$(C_TESTS) $(HARNESSES))

bench-gemm: $(BUILD)/tests/bench_gemm
	@$(BUILD)/tests/bench_gemm

bench-kernels: $(BUILD)/tests/bench_kernels
	@$(BUILD)/tests/bench_kernels

# The same C tests built with AddressSanitizer + UBSan into build-asan/.
test-asan:
	$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="$(SANITIZE)" test-c

# The same C tests under ThreadSanitizer into build-tsan/ (BLAS=none: OpenBLAS's own threads are
# not instrumented and would be reported; no target_clones: their ifunc resolvers run before TSan
# is initialised)
test-tsan:
	$(MAKE) --no-print-directory BUILD=build-tsan BLAS=none OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer -DDPT_NO_CLONES" test-c

# ---- fuzzing (tests/fuzz/fuzz_*.c, tools/fuzz.sh) ----
# A harness is linked with clang's libFuzzer (FUZZ_ENGINE=libfuzzer, `make fuzz`) or with
# tests/fuzz/driver.c, a main that runs files once (any compiler: the ASan replay).
FUZZ_TARGETS := $(filter-out $(if $(NO_SNDFILE),audio) $(if $(NO_IMAGE),image),$(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
ifeq ($(FUZZ_ENGINE),libfuzzer)
FUZZ_MAIN    :=
FUZZ_LDFLAGS := -fsanitize=fuzzer
else
FUZZ_MAIN    := $(BUILD)/obj/tests/fuzz/driver.o
FUZZ_LDFLAGS :=
endif
fuzz-bins: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_MAIN) $(CLI_OBJ) $(BUILD)/libdpt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_MAIN) $(CLI_OBJ) $(BUILD)/libdpt.a $(LIBS)

# (GCC's "undefined" leaves out float-cast-overflow: asked for by name, as clang has it)
SANITIZE := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60
fuzz:
	@command -v clang >/dev/null || { echo "make fuzz: needs clang and its libFuzzer (apt-get install clang libclang-rt-14-dev, or make deps)"; exit 1; }
	$(MAKE) --no-print-directory -s BUILD=build-fuzz CC=clang BLAS=none OPT=-O1 FUZZ_ENGINE=libfuzzer \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(SANITIZE)" fuzz-bins
	@tools/fuzz.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=15

test-fuzz-regress:
	$(MAKE) --no-print-directory -s BUILD=build-asan OPT=-O1 EXTRA_CFLAGS="$(SANITIZE)" fuzz-bins
	@tools/fuzz.sh --replay build-asan $(FUZZ_TARGETS)

# one full small generation under valgrind memcheck (tools/valgrind_check.sh)
test-valgrind: all
	@tools/valgrind_check.sh $(BUILD)

# soak bench (tools/soak.py): figures of the process itself after each job (--batch-stats)
soak: all
	@$(PY) tools/soak.py --build $(BUILD) --jobs 1000

soak-short: all
	@$(PY) tools/soak.py --build $(BUILD) --jobs 100

test-python: all $(addprefix $(BUILD)/tests/,$(HARNESSES))
	@DPT_BUILD=$(BUILD) $(PY) -m pytest -q -p no:cacheprovider tests/python

# the link flags of the library's dependencies (python/setup.py links libdpt.a with them)
print-libs:
	@echo $(LIBS)

# The dpt package (python/): installed with pip into a fresh venv ($(BUILD)/pyvenv: the system python3
# with its site packages, for numpy; offline: --no-build-isolation --no-index), its tests run from
# outside the source tree against the installed copy (python/tests/conftest.py); the package's library
# is built with this build's variant (BLAS=none, NO_SNDFILE=1, NO_IMAGE=1)
PYVENV := $(BUILD)/pyvenv
.PHONY: print-libs test-python-pkg
test-python-pkg: all
	@rm -rf $(PYVENV) $(BUILD)/pytest-pkg && mkdir -p $(BUILD)/pytest-pkg
	@/usr/bin/python3 -m venv --system-site-packages $(PYVENV)
	@DPT_MAKE_ARGS='$(if $(filter none,$(BLAS)),BLAS=none) $(if $(NO_SNDFILE),NO_SNDFILE=1) $(if $(NO_IMAGE),NO_IMAGE=1)' \
	  $(PYVENV)/bin/pip install -q --no-build-isolation --no-index --disable-pip-version-check ./python
	@cd $(BUILD)/pytest-pkg && DPT_ROOT=$(CURDIR) DPT_BUILD=$(abspath $(BUILD)) DPT_REF_PYTHON=$(abspath $(PY)) \
	  $(abspath $(PYVENV))/bin/python -m pytest -q -p no:cacheprovider $(CURDIR)/python/tests

test-aarch64:
	@tools/test_aarch64.sh

test: deps
	@tools/run_all_tests.sh

# all is built by a second make: this one read pkg-config before deps installed the packages
demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all $(addprefix $(BUILD)/tests/,$(HARNESSES))
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
	rm -rf build build-asan build-tsan build-fuzz build-noblas* build-nosndfile* build-noimage* build-static* build-aarch64-linux-gnu*
