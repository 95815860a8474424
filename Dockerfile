# Tapio agent image: a build stage with Debian's toolchain and -dev packages, and a runtime stage
# with only the shared libraries the two binaries link against, plus tapio-agent and tapioctl.
#
# Base: debian:bookworm. Without a registry, e2e/image/build.sh makes it locally with
# `debootstrap --variant=minbase bookworm` and `podman import` under that same name.
# Build:  e2e/image/build.sh            (or: podman build --network=host -t tapio:0.1.0 .)
# The full build compiles the whole project (gRPC-heavy C++): minutes on 2 cores, so it is not
# part of `make test`; see docs/install.md.
ARG BASE_IMAGE=debian:bookworm

FROM ${BASE_IMAGE} AS build
ARG JOBS=2
ENV DEBIAN_FRONTEND=noninteractive
# The same package list as a developer machine: one way to install build dependencies.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh build && apt-get install -y -qq --no-install-recommends binutils \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# vmlinux.h comes from the build host's BTF (/sys/kernel/btf/vmlinux, visible in the build
# container); the programs are CO-RE, so the image runs on other BTF kernels too.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTAPIO_BUILD_TESTS=OFF -DTAPIO_BUILD_BENCH=OFF \
    && cmake --build /build -j"${JOBS}" --target tapio-agent tapioctl \
    && mkdir -p /out/bin \
    && install -m 0755 -s /build/agent/tapio-agent /build/cli/tapioctl /out/bin/ \
    && e2e/image/runtime-packages.sh /out/bin/tapio-agent /out/bin/tapioctl \
       >/out/runtime-packages.txt \
    && cat /out/runtime-packages.txt

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
    && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/bin/ /usr/local/bin/
LABEL org.opencontainers.image.title="tapio" \
      org.opencontainers.image.description="Per-node Kubernetes memory agent (eBPF OOM tracking and prediction)"
# Runs as uid 0 with capabilities limited by the pod spec (deploy/helm/tapio): see
# docs/requirements.md.
ENTRYPOINT ["/usr/local/bin/tapio-agent"]
