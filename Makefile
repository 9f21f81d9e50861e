# ngx_bayeux_module: the README's commands.
#
#   make            build build/ngx_bayeux_module.so against Debian's nginx
#   make demo       serve the demo on http://127.0.0.1:8080/cometd
#   make test       run the test suite (prove -r t/)

SHELL = /bin/sh
PROVE ?= prove
PROVE_FLAGS ?= -r

SOURCES = config ngx_bayeux_module.c $(wildcard src/*.c src/*.h)

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

clean:
	rm -rf build t/servroot*

.PHONY: all deps demo test clean
