import runpy
from pathlib import Path

import pytest
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


def _gunicorn_config(monkeypatch, **env) -> dict:
    """gunicorn.conf.py's settings, read the way gunicorn reads the file (as a module)."""
    for name in ("GUNICORN_MAX_REQUESTS", "GUNICORN_MAX_REQUESTS_JITTER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_recycles_workers_by_default(monkeypatch):
    from gunicorn.config import Config

    config = _gunicorn_config(monkeypatch)
    assert (config["max_requests"], config["max_requests_jitter"]) == (5000, 500)
    gunicorn = Config()  # gunicorn's own validation accepts what the file sets
    for name in ("max_requests", "max_requests_jitter", "post_worker_init", "logger_class"):
        gunicorn.set(name, config[name])
    assert gunicorn.max_requests == 5000 and gunicorn.max_requests_jitter == 500
    assert gunicorn.post_worker_init is config["post_worker_init"]


def test_gunicorn_opens_no_control_socket(monkeypatch, tmp_path):
    """gunicorn's control socket has one path per user (~/.gunicorn/gunicorn.ctl): side-by-side
    checkouts took it from each other, and the first to stop deleted the others'."""
    from gunicorn.config import Config

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    config = _gunicorn_config(monkeypatch)
    gunicorn = Config()
    gunicorn.set("control_socket_disable", config["control_socket_disable"])
    assert gunicorn.control_socket_disable is True


def test_gunicorn_max_requests_comes_from_the_environment(monkeypatch):
    config = _gunicorn_config(monkeypatch, GUNICORN_MAX_REQUESTS="1200", GUNICORN_MAX_REQUESTS_JITTER="100")
    assert (config["max_requests"], config["max_requests_jitter"]) == (1200, 100)
    disabled = _gunicorn_config(monkeypatch, GUNICORN_MAX_REQUESTS="0")
    assert (disabled["max_requests"], disabled["max_requests_jitter"]) == (0, 0)


@pytest.mark.parametrize("value", ["-1", "lots", "1.5"])
def test_gunicorn_max_requests_refuses_bad_values(monkeypatch, value):
    with pytest.raises(ValueError, match="GUNICORN_MAX_REQUESTS must be a whole number"):
        _gunicorn_config(monkeypatch, GUNICORN_MAX_REQUESTS=value)


def test_every_web_command_takes_its_settings_from_gunicorn_conf(monkeypatch):
    """Slowloris (issue 13): the compose stack, the Dockerfile, `make run` and the bench all
    run the same worker, because they all leave the settings to gunicorn.conf.py."""
    from gunicorn.config import Config

    from supportai.gunicorn_worker import BufferedThreadWorker
    from testkit.processes import gunicorn_command

    for name in ("WEB_CONCURRENCY", "WEB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    config = _gunicorn_config(monkeypatch)
    gunicorn = Config()
    for name in ("worker_class", "workers", "threads", "worker_connections", "keepalive", "timeout"):
        gunicorn.set(name, config[name])
    assert gunicorn.worker_class is BufferedThreadWorker
    assert (gunicorn.workers, gunicorn.threads) == (2, 8)
    assert gunicorn.worker_connections >= 2000  # slow, idle and streaming clients are cheap

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    run = (ROOT / "scripts" / "run.py").read_text()
    commands = [
        compose["services"]["web"]["command"],
        dockerfile.split("\nCMD ", 1)[1],
        run,
        " ".join(gunicorn_command(port=8000)),
    ]
    for command in commands:
        assert "supportai.wsgi:application" in command
        for flag in ("--worker-class", "-k ", "--timeout", "--keep-alive"):
            assert flag not in command, (flag, command[:300])
    # The image holds gunicorn.conf.py at the working directory gunicorn starts in.
    assert "WORKDIR /app" in dockerfile and "COPY . ." in dockerfile
    dockerignore = ROOT / ".dockerignore"
    if dockerignore.exists():
        assert "gunicorn.conf.py" not in dockerignore.read_text()


@pytest.mark.parametrize("name", ["WEB_CONCURRENCY", "WEB_THREADS"])
def test_web_sizes_come_from_the_environment(monkeypatch, name):
    config = _gunicorn_config(monkeypatch, **{name: "3"})
    assert config["workers" if name == "WEB_CONCURRENCY" else "threads"] == 3
    with pytest.raises(ValueError, match=f"{name} must be a whole number"):
        _gunicorn_config(monkeypatch, **{name: "many"})


def _run_script(monkeypatch, **env):
    import importlib.util
    import sys

    for name in ("PORT", "BIND_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("run_script_under_test", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_make_run_listens_on_loopback_unless_told(monkeypatch):
    """`make run` bound 0.0.0.0 while printing a demo owner's login: any machine on the network
    could sign in with it (ALLOWED_HOSTS trusts the Host header a client sends)."""
    command = _run_script(monkeypatch, PORT="8123").web_command()
    assert command[command.index("--bind") + 1] == "127.0.0.1:8123"
    command = _run_script(monkeypatch, PORT="8123", BIND_ADDRESS="0.0.0.0").web_command()
    assert command[command.index("--bind") + 1] == "0.0.0.0:8123"
    command = _run_script(monkeypatch, PORT="8123", BIND_ADDRESS="::").web_command()
    assert command[command.index("--bind") + 1] == "[::]:8123"
