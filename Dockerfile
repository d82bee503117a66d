# syntax=docker/dockerfile:1
#
# argserve container image (CPU). Two stages: a builder with the full Debian toolchain and -dev
# packages, and a slim runtime holding only the shared libraries the two binaries load.
#
#   docker build -t argserve:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9464:9464 argserve:0.1.0
#
# The default model is baked in from model/default/argserve-default.pt (override with
# --build-arg MODEL=path/inside/the/context.pt). To serve another model without rebuilding, mount
# it at /models and pass the full flag set (arguments after the image name replace CMD):
#
#   docker run --rm -p 50051:50051 -p 9464:9464 -v "$PWD/models:/models:ro" argserve:0.1.0 \
#       --address=0.0.0.0:50051 --metrics_address=0.0.0.0:9464 --model=/models/x.pt
#
# See docs/deployment.md. The GPU variant is Dockerfile.cuda.

ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE} AS builder

# The same package list as a developer machine and CI: one list to maintain. It also installs the
# training and test tools, which this stage does not need, but they never reach the runtime image.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*

COPY . /src
# Tests off: no GoogleTest, no training targets, and a faster build.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DARGSERVE_BUILD_TESTS=OFF \
      -DARGSERVE_DEFAULT_MODEL=/opt/argserve/model/argserve-default.pt \
 && cmake --build /build -j"$(nproc)" --target argserve argserve-cli \
 && strip /build/bin/argserve /build/bin/argserve-cli

# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# Runtime libraries only: the packages behind the binaries' NEEDED entries (libtorch, gRPC with
# reflection, protobuf, Abseil, prometheus-cpp, zlib for the client's gzip input, jemalloc as the
# server's malloc, parasail and libssw for the nearest-reference alignments). libtorch1.13
# needs some BLAS/LAPACK; naming OpenBLAS here makes apt pick it over the reference libblas3,
# which is many times slower for the model's matrix products.
# Debian's libtorch1.13 also pulls in OpenCV and FFmpeg libraries it links against, which is
# most of the image's size; they are never used by argserve.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libtorch1.13 libopenblas0-pthread \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libprometheus-cpp-core1.0 zlib1g libjemalloc2 libmicrohttpd12 libparasail8 libssw0 \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid, so Kubernetes can check runAsNonRoot without looking the name up.
RUN groupadd --system --gid 10001 argserve \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin argserve \
 && mkdir -p /opt/argserve/model /models

COPY --from=builder /build/bin/argserve /build/bin/argserve-cli /usr/local/bin/

# The shipped model. /models is the place to mount others (no VOLUME instruction: that would
# create an anonymous volume on every run even when nobody mounts anything).
ARG MODEL=model/default/argserve-default.pt
COPY ${MODEL} /opt/argserve/model/argserve-default.pt

USER 10001:10001
WORKDIR /opt/argserve

# gRPC (argserve.v1.ArgClassifier, grpc.health.v1.Health, reflection) and Prometheus /metrics.
EXPOSE 50051 9464

# SERVING only after the model is loaded and warmed up, and again NOT_SERVING while draining.
# The start period covers model loading; the client's own deadline stays below --timeout.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["argserve-cli", "health", "--target", "127.0.0.1:50051", "--deadline", "3"]

# The server's built-in defaults listen on loopback only, which is unreachable from outside a
# container, so the image's default command listens on all interfaces.
ENTRYPOINT ["argserve"]
CMD ["--address=0.0.0.0:50051", "--metrics_address=0.0.0.0:9464", \
     "--model=/opt/argserve/model/argserve-default.pt"]
