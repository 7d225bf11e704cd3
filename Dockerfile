FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SUPPORTAI_ENV=production \
    HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build-only-$(python -c "import secrets;print(secrets.token_urlsafe(48))") \
    ALLOWED_HOSTS=build DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput
RUN useradd --create-home supportai && chown -R supportai /app
USER supportai
EXPOSE 8000
# Workers, threads, timeouts and the worker class come from gunicorn.conf.py.
CMD ["gunicorn", "supportai.wsgi:application", "--bind", "0.0.0.0:8000"]
