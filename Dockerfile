# Chairfill API image.
#
#   docker build -t chairfill .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... chairfill chairfill migrate
#   docker run -p 8000:8000 -e CHAIRFILL_ENV=prod -e CHAIRFILL_SECRET_KEY=... \
#     -e DATABASE_URL=... -e REDIS_URL=... chairfill
#   docker run -e ... chairfill chairfill worker
#
# Migrations are a separate step (the `migrate` run above, once per release) so that
# several API containers starting together never race to change the schema.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY api ./api
COPY workers ./workers
# A regular (not editable) install: the runtime stage needs only the venv.
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHAIRFILL_ENV=prod
RUN groupadd --system chairfill && useradd --system --gid chairfill --home-dir /app chairfill
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Alembic reads alembic.ini and the migrations relative to the working directory.
COPY alembic.ini ./
COPY alembic ./alembic
USER chairfill
EXPOSE 8000
CMD ["chairfill", "serve", "--host", "0.0.0.0", "--port", "8000"]
