# The operator image: `kubetune operator`, non-root, read-only root filesystem friendly.
#   docker build -t kubetune/operator:0.1.0 .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# The GP sampler needs torch; the CPU wheel keeps the image small.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.2"
COPY pyproject.toml README.md /src/
COPY operator /src/operator
RUN pip install /src && rm -rf /src
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin kubetune
USER 10001:10001
ENTRYPOINT ["kubetune"]
CMD ["operator"]
