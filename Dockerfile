# Two stages: build with the Swift toolchain, run on slim Debian with only the two C runtimes.
# The build stage runs scripts/setup.sh and scripts/build.sh, the same scripts README's serve
# command runs (no Docker engine runs where this is developed, so the scripts are what is tested).
FROM swift:6.3-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/setup.sh && scripts/build.sh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libjansson4 libcurl4 libxml2 tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /srv lstm
COPY --from=build /usr/lib/swift/linux/*.so /usr/lib/swift/linux/
COPY --from=build /src/.build/install/lstm-serve /usr/local/bin/lstm-serve
COPY config /srv/config
COPY models /srv/models
WORKDIR /srv
USER lstm
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD ["/usr/bin/env", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENV LD_LIBRARY_PATH=/usr/lib/swift/linux
CMD ["lstm-serve", "serve", "--host", "0.0.0.0", "--port", "8080"]
