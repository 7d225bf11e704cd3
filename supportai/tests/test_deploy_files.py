from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_declares_the_production_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "beat", "postgres", "redis"}
    assert "pgvector" in services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")
    assert "gunicorn" in services["web"]["command"]
    assert "celery -A supportai worker" in services["worker"]["command"]
    assert "ingestion" in services["worker"]["command"]
    assert "celery -A supportai beat" in services["beat"]["command"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert environment["SUPPORTAI_ENV"] == "production"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_requirements_are_pinned_exactly():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("-r "):
                continue
            assert "==" in line, f"{name}: {line} is not pinned"
            assert not line.lower().startswith("litellm==1.107"), "litellm 1.107.x was compromised"
