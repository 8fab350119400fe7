# hoplink-server: a multi-stage build; the runtime image holds the binary only and runs
# as an unprivileged user. Build: docker build -t hoplink .
FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka (bundled) builds with make and a C compiler, both in the rust image.
COPY . .
RUN cargo build --release --locked -p hoplink-server --bin hoplink \
 && cp target/release/hoplink /hoplink

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hoplink
COPY --from=build /hoplink /usr/local/bin/hoplink
USER 10001
ENV BIND=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/hoplink", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/hoplink"]
