# Multi-stage build of mbk-host. The runtime image holds only the binary and CA certificates.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends nasm clang lld && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release -p mbk-host --locked && cp target/release/mbk-host /mbk-host

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/mbk --create-home mbk
COPY --from=build /mbk-host /usr/local/bin/mbk-host
USER mbk
WORKDIR /var/lib/mbk
ENV DATA_DIR=/var/lib/mbk/data BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["mbk-host"]
CMD ["serve"]
