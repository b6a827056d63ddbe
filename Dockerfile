# Two stages: build with the Swift toolchain, run on slim Debian with only the C runtimes.
# The build stage runs scripts/setup.sh and scripts/build.sh, the same scripts README's serve
# command runs (no Docker engine runs where this is developed, so the scripts are what is tested).
#   docker build -t lstm-serve .                            # runs on any x86-64-v3 CPU (AVX2, FMA: Intel Haswell, AMD Zen and later)
#   docker build --build-arg TARGET_CPU=native -t lstm-serve .   # this CPU family only, fastest
FROM swift:6.3-bookworm AS build
ARG TARGET_CPU=haswell
WORKDIR /src
# system packages first: this layer stays cached while the source changes
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh
COPY . .
RUN LSTM_SERVE_TARGET_CPU=$TARGET_CPU scripts/build.sh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libjansson4 libsqlite3-0 libhiredis0.14 libcurl4 libxml2 tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /srv lstm
COPY --from=build /usr/lib/swift/linux/*.so /usr/lib/swift/linux/
COPY --from=build /src/.build/install/lstm-serve /usr/local/bin/lstm-serve
COPY config /srv/config
COPY models /srv/models
WORKDIR /srv
# numeric, so that a runtime that refuses to run as root can check it without /etc/passwd
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD ["/usr/bin/env", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENV LD_LIBRARY_PATH=/usr/lib/swift/linux
# behind a container network every client shares the proxy's address: no per-IP limit
CMD ["lstm-serve", "serve", "--host", "0.0.0.0", "--port", "8080", "--per-ip-connection-limit", "0"]
