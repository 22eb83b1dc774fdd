# syntax=docker/dockerfile:1
# Build stage: a wheel with the shipped policies inside it.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md LICENSE ./
COPY pdp ./pdp
COPY policies ./policies
RUN python -m build --wheel --outdir /dist

# Runtime stage: the wheel only, as an unprivileged user.
FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 pdp
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER pdp
WORKDIR /home/pdp
ENV PDP_HOST=0.0.0.0 PDP_PORT=8080 PDP_DATA_DIR=/home/pdp/.pdp
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["pdp"]
CMD ["serve"]
