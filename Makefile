# Builds the static rtcmesh binary and the container image around it. Nothing is pulled from
# a registry: the image is FROM scratch.

GO        ?= go
DOCKER    ?= docker
IMAGE     ?= rtcmesh:latest
BIN       := bin/rtcmesh

.PHONY: build image nats-image clean

# A static binary (no cgo, so no libc in the image), with paths trimmed from the build info.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/rtcmesh

# bin/rootfs/data becomes /data in the image, owned by the user rtcmesh runs as. The legacy
# builder (DOCKER_BUILDKIT=0) is enough for a FROM scratch image and needs no buildx plugin.
image: build
	mkdir -p bin/rootfs/data
	DOCKER_BUILDKIT=0 $(DOCKER) build -t $(IMAGE) .

# The NATS server of docker-compose's "nats" profile, built from the Go module go.mod names.
NATS_IMAGE ?= rtcmesh-nats:latest
nats-image:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/nats-server github.com/nats-io/nats-server/v2
	mkdir -p bin/rootfs/data
	DOCKER_BUILDKIT=0 $(DOCKER) build -f Dockerfile.nats -t $(NATS_IMAGE) .

clean:
	rm -rf bin
