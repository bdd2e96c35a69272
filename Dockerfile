# The consumer image: a static binary on distroless, run as a non-root user.
#   docker build -t registry.example.internal/actions-consumer:latest .
# (the image deploy/k8s/consumer.yaml runs; deploy/ops_test.go checks they agree)

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/consumer ./cmd/consumer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/consumer /usr/local/bin/consumer
# 65532 is distroless's nonroot user, the runAsUser of deploy/k8s/consumer.yaml.
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/consumer"]
CMD ["run"]
