# Boxoffice in a container: build the release binary in a Rust image, run it in a slim one.
# Nothing is fetched at build time except crates from crates.io (assets are vendored).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits rebuild only the workspace's own crates.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --release --locked -p boxoffice \
    && cp target/release/boxoffice /usr/local/bin/boxoffice

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/boxoffice --create-home boxoffice
COPY --from=build /usr/local/bin/boxoffice /usr/local/bin/boxoffice
USER boxoffice
WORKDIR /var/lib/boxoffice
ENV BOXOFFICE_LISTEN=0.0.0.0:8080 \
    BOXOFFICE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM lets in-flight requests finish and closes live sockets with a close frame.
STOPSIGNAL SIGTERM
ENTRYPOINT ["boxoffice"]
CMD ["serve"]
