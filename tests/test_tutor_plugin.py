"""
The Tutor plugin (``tutor-plugin/``), rendered by the Tutor release it targets.

Tutor comes from PyPI into a throwaway virtualenv, cached under
``~/.cache/edx-event-bus-outbox`` (it is the slow part); the plugin is installed into it afresh
each run. The commands run are the ones docs/deployment.rst shows: each literal block after a
``.. tested by tests/test_tutor_plugin.py: SCENARIO`` comment is read from the guide and its
``$ tutor ...`` lines run, in a temporary TUTOR_ROOT. Then the rendered environment is read:
the docker-compose and Kubernetes YAML (parsed by the virtualenv's PyYAML), and the LMS and CMS
Django settings (compiled, and the plugin's block executed). Needs no Docker and no cluster.
"""

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "deployment.rst"
TUTOR_VERSION = "22.0.3"
CACHE = Path.home() / ".cache" / "edx-event-bus-outbox"
VENV = CACHE / f"tutor-{TUTOR_VERSION}-py{sys.version_info.major}.{sys.version_info.minor}"
PLUGIN_BLOCK_START = "# edx-event-bus-outbox (tutor-contrib-event-bus-outbox)"
PLUGIN_BLOCK_END = "######## End of settings common to LMS and CMS"
RELAYS = {"outbox-relay-lms": "lms", "outbox-relay-cms": "cms"}
LOAD_YAML = "import json, sys, yaml; print(json.dumps({p: list(yaml.safe_load_all(open(p))) for p in sys.argv[1:]}))"


def run(*command, env=None, check=True, timeout=300):
    child_env = {key: value for key, value in os.environ.items() if not key.startswith(("TUTOR_", "DJANGO_"))}
    child_env.update(env or {})
    result = subprocess.run(
        [str(part) for part in command], env=child_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def tutor_python(tmp_path_factory):
    """The cached virtualenv's python, with Tutor from PyPI and this checkout's plugin."""
    python, complete = VENV / "bin" / "python", VENV / ".complete"
    if not complete.exists():  # a virtualenv cannot be moved, so it is built in place and marked when done
        shutil.rmtree(VENV, ignore_errors=True)
        run(sys.executable, "-m", "venv", VENV, timeout=120)
        run(python, "-m", "pip", "install", "-q", f"tutor=={TUTOR_VERSION}", timeout=900)
        complete.touch()
    # From a copy: building in place would leave an egg-info in the checkout.
    source = tmp_path_factory.mktemp("plugin") / "tutor-plugin"
    shutil.copytree(ROOT / "tutor-plugin", source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    run(python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", source, timeout=300)
    assert run(python.with_name("tutor"), "--version").stdout.split()[-1] == TUTOR_VERSION
    return python


def guide_commands(scenario):
    """The ``$ tutor ...`` lines of the guide's block tested for ``scenario``, as argument lists."""
    text = GUIDE.read_text()
    marker = f".. tested by tests/test_tutor_plugin.py: {scenario}\n"
    assert text.count(marker) == 1, f"docs/deployment.rst has no single block marked {marker!r}"
    block = re.match(r"(?:\s*\n)*((?:(?: {4}.*)?\n)+)", text.split(marker, 1)[1].split("::\n", 1)[1]).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line.strip()[2:]) for line in lines if line.strip().startswith("$ tutor ")]
    assert commands, f"the block marked {scenario} holds no '$ tutor' line"
    return commands


def tutor_env(tmp_path):
    """A TUTOR_ROOT of its own, and no plugin from the user's plugins root."""
    return {"TUTOR_ROOT": str(tmp_path / "root"), "TUTOR_PLUGINS_ROOT": str(tmp_path / "plugins")}


def render(tutor_python, tmp_path, scenario):
    """Run the guide's commands for ``scenario`` in a fresh TUTOR_ROOT; return its env/ folder."""
    for command in guide_commands(scenario):
        assert command[0] == "tutor", command
        run(tutor_python.with_name("tutor"), *command[1:], env=tutor_env(tmp_path), timeout=120)
    return tmp_path / "root" / "env"


def load_yaml(tutor_python, *paths):
    return json.loads(run(tutor_python, "-c", LOAD_YAML, *paths).stdout)


@pytest.fixture(scope="module", params=["kafka", "redis"])
def rendered(request, tutor_python, tmp_path_factory):
    sink = request.param
    tmp_path = tmp_path_factory.mktemp(sink)
    env_dir = render(tutor_python, tmp_path, sink)
    if sink == "kafka":
        # A secret with a quote: the settings must still be valid Python that yields it unchanged.
        secret = "OUTBOX_KAFKA_API_SECRET=s3cr'et"
        run(tutor_python.with_name("tutor"), "config", "save", "--set", secret, env=tutor_env(tmp_path))
    files = {
        "local": env_dir / "local" / "docker-compose.yml",
        "dev": env_dir / "dev" / "docker-compose.yml",
        "k8s": env_dir / "k8s" / "deployments.yml",
    }
    documents = load_yaml(tutor_python, *files.values())
    return {
        "sink": sink,
        "env": env_dir,
        "local": documents[str(files["local"])][0]["services"],
        "dev": documents[str(files["dev"])][0]["services"],
        "k8s": {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents[str(files["k8s"])] if doc},
    }


def consumer_ports(rendered):
    """Kafka consumers serve /healthz on the consumer metrics port; edx-event-bus-redis's serve nothing."""
    return 9101 if rendered["sink"] == "kafka" else None


def expected_processes(rendered):
    """name -> (command, metrics port) of every long-running process the guide's config asks for."""
    processes = {
        name: (["./manage.py", service, "run_outbox_relay", "--metrics-port", "9100"], 9100)
        for name, service in RELAYS.items()
    }
    processes["outbox-consumer-lms-analytics-event-routing-backends"] = (
        ["./manage.py", "lms", "consume_events", "-t", "analytics", "-g", "event_routing_backends"]
        + ["--extra", '{"consumer_name": "aspects"}'],
        consumer_ports(rendered),
    )
    processes["outbox-consumer-cms-course-authoring-xblock-lifecycle-search"] = (
        ["./manage.py", "cms", "consume_events", "-t", "course-authoring-xblock-lifecycle", "-g", "search"],
        consumer_ports(rendered),
    )
    return processes


def test_docker_compose_runs_each_relay_and_consumer_with_its_command_and_health_check(rendered):
    for name, (command, port) in expected_processes(rendered).items():
        service = rendered["local"][name]
        assert service["command"] == command
        variant = command[1]
        assert service["environment"] == {
            "SERVICE_VARIANT": variant,
            "DJANGO_SETTINGS_MODULE": f"{variant}.envs.tutor.production",
        }
        settings_mount = f"../apps/openedx/settings/{variant}:/openedx/edx-platform/{variant}/envs/tutor:roz"
        assert settings_mount in service["volumes"]
        assert service["restart"] == "unless-stopped"
        if port:
            assert f"http://127.0.0.1:{port}/healthz" in service["healthcheck"]["test"][-1]
        else:
            assert "healthcheck" not in service
    assert rendered["local"]["outbox-consumer-cms-course-authoring-xblock-lifecycle-search"]["deploy"] == {
        "replicas": 2
    }
    depends = rendered["local"]["outbox-relay-lms"]["depends_on"]
    assert depends == (["lms", "redis"] if rendered["sink"] == "redis" else ["lms"])


def purge_script(rendered):
    """The outbox's purge, and in Kafka mode the outbox consumers' inbox's (edx-event-bus-redis has none)."""
    if rendered["sink"] == "kafka":
        return "./manage.py lms purge_outbox && ./manage.py lms purge_consumer_inbox"
    return "./manage.py lms purge_outbox"


def test_docker_compose_purges_daily_in_a_loop(rendered):
    purge = rendered["local"]["outbox-purge"]
    assert purge["command"] == ["sh", "-c", f"while true; do {purge_script(rendered)}; sleep 86400; done"]


def test_tutor_dev_runs_the_same_processes_on_the_development_image_and_settings(rendered):
    for name, (command, _) in expected_processes(rendered).items():
        service = rendered["dev"][name]
        assert service["image"].startswith("openedx-dev"), service["image"]
        assert service["environment"] == {"DJANGO_SETTINGS_MODULE": f"{command[1]}.envs.tutor.development"}
    assert rendered["dev"]["outbox-purge"]["environment"]["DJANGO_SETTINGS_MODULE"] == "lms.envs.tutor.development"


def test_kubernetes_deployments_run_each_process_with_probes_on_healthz(rendered):
    for name, (command, port) in expected_processes(rendered).items():
        deployment = rendered["k8s"][("Deployment", name)]
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == name
        # Tutor's `k8s start` applies everything but component=job, which it runs on demand.
        assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] != "job"
        (container,) = pod["spec"]["containers"]
        assert container["args"] == command
        assert {"name": "DJANGO_SETTINGS_MODULE", "value": f"{command[1]}.envs.tutor.production"} in container["env"]
        assert {"mountPath": "/openedx/config", "name": "config"} in container["volumeMounts"]
        if port:
            assert container["ports"] == [{"name": "metrics", "containerPort": port}]
            for probe in ("livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        else:
            assert "livenessProbe" not in container and "ports" not in container
    consumer = rendered["k8s"][("Deployment", "outbox-consumer-cms-course-authoring-xblock-lifecycle-search")]
    assert consumer["spec"]["replicas"] == 2
    assert rendered["k8s"][("Deployment", "outbox-relay-lms")]["spec"]["replicas"] == 1


def test_kubernetes_cronjob_purges_on_schedule(rendered):
    cronjob = rendered["k8s"][("CronJob", "outbox-purge")]
    assert cronjob["spec"]["schedule"] == "17 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["sh", "-c", purge_script(rendered)]


def last_assignments(source):
    """Each name assigned at module level, with the value of its last assignment (constants only)."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value.value
    return values


def plugin_settings(source, environ=None):
    """Execute the plugin's block of a rendered settings file, as edx-platform's settings would reach it."""
    block = PLUGIN_BLOCK_START + source.split(PLUGIN_BLOCK_START, 1)[1].split(PLUGIN_BLOCK_END, 1)[0]

    class Environ:
        get = staticmethod((environ or {}).get)

    namespace = {
        "INSTALLED_APPS": ["openedx_events"],
        "EVENT_BUS_PRODUCER_CONFIG": {"org.openedx.learning.course.passing.status.updated.v1": {}},
        "os": type("os", (), {"environ": Environ}),
    }
    exec(compile(block, "plugin block", "exec"), namespace)  # noqa: S102 -- our own rendered template
    return namespace


@pytest.mark.parametrize("service", ["lms", "cms"])
@pytest.mark.parametrize("flavour", ["production", "development"])
def test_rendered_settings_compile_and_name_the_outbox_producer_and_the_consumer(rendered, service, flavour):
    path = rendered["env"] / "apps" / "openedx" / "settings" / service / f"{flavour}.py"
    source = path.read_text()
    compile(source, str(path), "exec")
    values = last_assignments(source)  # Tutor sets edx-event-bus-redis first; the plugin's value comes last
    assert values["EVENT_BUS_PRODUCER"] == "edx_event_bus_outbox.create_producer"
    settings = plugin_settings(source)
    assert settings["INSTALLED_APPS"] == ["openedx_events", "edx_event_bus_outbox"]
    assert settings["EVENT_BUS_TOPIC_PREFIX"] == "dev"
    if rendered["sink"] == "redis":
        assert values["EVENT_BUS_CONSUMER"] == "edx_event_bus_redis.RedisEventConsumer"
        assert settings["EVENT_BUS_OUTBOX_SINK"] == "redis"
        assert settings["EVENT_BUS_REDIS_CONNECTION_URL"] == "redis://@redis:6379/"
        assert settings["EVENT_BUS_REDIS_STREAM_MAX_LEN"] == 10000
        assert "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS" not in settings
    else:
        assert values["EVENT_BUS_CONSUMER"] == "edx_event_bus_outbox.KafkaEventConsumer"
        assert settings["EVENT_BUS_OUTBOX_SINK"] == "kafka"
        assert settings["EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka.example.com:9093"
        assert settings["EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL"] == "https://registry.example.com"
        assert settings["EVENT_BUS_OUTBOX_KAFKA_CONFIG"] == {"socket.keepalive.enable": True}
        assert settings["EVENT_BUS_OUTBOX_CONSUMER_METRICS_PORT"] == 9101
    # OUTBOX_PRODUCER_CONFIG goes through openedx-events' own merge, as edx-platform's does.
    assert settings["EVENT_BUS_PRODUCER_CONFIG"]["org.openedx.content_authoring.xblock.published.v1"] == {
        "course-authoring-xblock-lifecycle": {"event_key_field": "xblock_info.usage_key", "enabled": True}
    }
    assert settings["EVENT_BUS_OUTBOX_TOPIC_MODES"] == {"course-authoring-xblock-lifecycle": "outbox"}
    assert settings["EVENT_BUS_OUTBOX_RELAY_BATCH_SIZE"] == 1000


def test_credentials_come_from_the_environment_when_the_process_has_them(rendered):
    source = (rendered["env"] / "apps" / "openedx" / "settings" / "lms" / "production.py").read_text()
    if rendered["sink"] == "redis":  # Tutor's Redis URL carries Tutor's own password; no Kafka credential
        assert "EVENT_BUS_KAFKA_API_SECRET" not in plugin_settings(source)
        (relay,) = rendered["k8s"][("Deployment", "outbox-relay-lms")]["spec"]["template"]["spec"]["containers"]
        assert "envFrom" not in relay
        return
    from_config = plugin_settings(source)
    assert (from_config["EVENT_BUS_KAFKA_API_KEY"], from_config["EVENT_BUS_KAFKA_API_SECRET"]) == ("relay", "s3cr'et")
    from_secret = plugin_settings(source, {"EVENT_BUS_KAFKA_API_SECRET": "from-k8s-secret"})
    assert from_secret["EVENT_BUS_KAFKA_API_SECRET"] == "from-k8s-secret"
    for name in ("outbox-relay-lms", "outbox-purge"):
        kind = "CronJob" if name == "outbox-purge" else "Deployment"
        template = rendered["k8s"][(kind, name)]["spec"]
        pod = (template["jobTemplate"]["spec"] if kind == "CronJob" else template)["template"]["spec"]
        assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "event-bus-outbox"}}]


def test_the_image_installs_the_package(rendered):
    dockerfile = (rendered["env"] / "build" / "openedx" / "Dockerfile").read_text()
    assert "$PIP_COMMAND install edx-event-bus-outbox==0.1.0" in dockerfile


def test_init_tasks_migrate_the_outbox_in_lms_and_cms(rendered, tutor_python):
    script = (
        "import os, json; from tutor import hooks; import tutor.commands.cli; hooks.Actions.CORE_READY.do();"
        "hooks.Actions.PROJECT_ROOT_READY.do(os.environ['TUTOR_ROOT']);"
        "print(json.dumps([t for t in hooks.Filters.CLI_DO_INIT_TASKS.iterate() if 'outbox' in t[1]]))"
    )
    tasks = json.loads(run(tutor_python, "-c", script, env={"TUTOR_ROOT": str(rendered["env"].parent)}).stdout)
    assert [service for service, _ in tasks] == ["lms", "cms"]
    for service, task in tasks:
        assert task.splitlines() == [
            f"./manage.py {service} migrate edx_event_bus_outbox",
            f"./manage.py {service} outbox_status",
        ]


def test_tutor_do_outbox_status_is_a_job_of_local_dev_and_k8s(rendered, tutor_python):
    env = {"TUTOR_ROOT": str(rendered["env"].parent)}
    for mode in ("local", "dev", "k8s"):
        help_text = run(tutor_python.with_name("tutor"), mode, "do", "outbox-status", "--help", env=env).stdout
        assert "--check" in help_text and "--service [lms|cms]" in help_text


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ('OUTBOX_CONSUMERS=[{"topic": "analytics"}]', "Each OUTBOX_CONSUMERS entry needs a 'topic' and a 'group'"),
        ("OUTBOX_SINK=rabbitmq", "OUTBOX_SINK must be one of kafka, redis, not 'rabbitmq'"),
        ("OUTBOX_RELAY_SERVICES=[lms, discovery]", "Each OUTBOX_RELAY_SERVICES entry must be one of lms, cms"),
    ],
)
def test_config_save_refuses_what_the_plugin_cannot_run(tutor_python, tmp_path, setting, reason):
    tutor, env = tutor_python.with_name("tutor"), tutor_env(tmp_path)
    run(tutor, "plugins", "enable", "event-bus-outbox", env=env)
    result = run(tutor, "config", "save", "--set", setting, env=env, check=False)
    assert result.returncode != 0
    assert reason in result.stdout + result.stderr
