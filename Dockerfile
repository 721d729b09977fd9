# The rtcmesh image: one static binary in an otherwise empty image, so building it pulls
# nothing from a registry. Build the binary on the host first (make image does both):
#
#   CGO_ENABLED=0 go build -trimpath -o bin/rtcmesh ./cmd/rtcmesh
#   mkdir -p bin/rootfs/data && docker build -t rtcmesh .
#
# There is no shell, libc or CA bundle inside: rtcmesh needs none (nodes and the signaling
# server speak plain ws:// here; put a TLS-terminating proxy in front for wss://).
FROM scratch

# The node's identity (its DTLS certificate, hence its ID) lives in /data. The directory comes
# from the build context, owned by the unprivileged user the process runs as, so that a fresh
# volume mounted there is writable; each container gets its own volume, hence its own ID.
COPY --chown=65532:65532 bin/rootfs/ /
COPY bin/rtcmesh /rtcmesh

USER 65532:65532
ENV RTCMESH_IDENTITY=/data/identity.pem
VOLUME ["/data"]

# 8080: signaling (/ws), the web page, /metrics, /healthz, /readyz.
# 3478 UDP and TCP: the embedded TURN/STUN relay. 9090: a node's --http-listen in compose.
# The relay port range is whatever --turn-relay-ports says; docker-compose.yml publishes it.
EXPOSE 8080 3478/udp 3478/tcp 9090

ENTRYPOINT ["/rtcmesh"]
CMD ["--help"]
