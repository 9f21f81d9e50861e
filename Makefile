# ngx_bayeux_module: the README's commands.
#
#   make            build build/ngx_bayeux_module.so against Debian's nginx
#   make demo       serve the demo on http://127.0.0.1:8080/cometd
#   make test       run the test suite (prove -r t/)
#   make test-asan  the protocol and Redis suites against an nginx built
#                   with AddressSanitizer and UBSan (util/asan-build)
#   make test-static  the protocol suite against an nginx built from
#                   Debian's source with the module compiled in
#                   (util/static-build)
#   make deb        the Debian package libnginx-mod-http-bayeux in
#                   build/deb/, checked by lintian (util/deb)

SHELL = /bin/sh
PROVE ?= prove
PROVE_FLAGS ?= -r

SOURCES = config ngx_bayeux_module.c $(wildcard src/*.h src/*/*.c src/*/*.h src/*/*.lua)

all: build/ngx_bayeux_module.so

build/ngx_bayeux_module.so: $(SOURCES) util/build
	util/deps build
	util/build

deps:
	util/deps all

demo: build/ngx_bayeux_module.so
	util/deps demo
	util/demo

test: build/ngx_bayeux_module.so
	util/deps test
	$(PROVE) $(PROVE_FLAGS) t/

# nginx itself built with ASan and UBSan and the module compiled in
# (util/asan-build), running the protocol and Redis suites and the fuzzer;
# the Redis load test at a tenth of its size (ASan's slowness would make
# its publishers' sessions expire)
build/asan/sbin/nginx: $(SOURCES) util/asan-build
	util/deps asan
	util/asan-build

test-asan: build/asan/sbin/nginx
	util/deps test
	TEST_NGINX_BINARY=$(CURDIR)/build/asan/sbin/nginx \
	TEST_NGINX_MODULE=static TEST_BAYEUX_LOAD_SCALE=0.1 \
	$(PROVE) t/0*.t t/redis/

# nginx built from Debian's source with the module compiled in
# (--add-module, no sanitizers: util/static-build), running the protocol
# suite without load_module
build/static/sbin/nginx: $(SOURCES) util/static-build util/asan-build
	util/deps asan
	util/static-build

test-static: build/static/sbin/nginx
	util/deps test
	TEST_NGINX_BINARY=$(CURDIR)/build/static/sbin/nginx \
	TEST_NGINX_MODULE=static \
	$(PROVE) t/0*.t t/1*.t

# the Debian package (debian/, util/deb): build/deb/*.deb
deb:
	util/deps deb
	util/deb

clean:
	rm -rf build t/servroot*

.PHONY: all deps demo test test-asan test-static deb clean

# bench/: the load generator and the measurement against nginx's
# "return 200" and Faye (docs/benchmarks.md)
#
#   make bench          the full run; writes docs/benchmarks.md and .png;
#                       the handshakes are measured by wrk too (--wrk)
#   make bench-quick    a reduced run in under a minute (build/bench/)

BENCH_CFLAGS ?= -std=gnu99 -O2 -g -Wall -Wextra -Werror
BENCH_SOURCES = bench/bayeux-bench.c bench/bb_net.c bench/bb_hist.c

bench/bin/bayeux-bench: $(BENCH_SOURCES) bench/bb.h
	mkdir -p bench/bin
	$(CC) $(BENCH_CFLAGS) -o $@ $(BENCH_SOURCES)

bench: build/ngx_bayeux_module.so bench/bin/bayeux-bench
	bench/deps
	bench/run --wrk

bench-quick: build/ngx_bayeux_module.so bench/bin/bayeux-bench
	bench/deps
	bench/run --quick

.PHONY: bench bench-quick
