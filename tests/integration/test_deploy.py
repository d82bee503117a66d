"""Deployment files, checked without a container engine or a cluster.

- Dockerfiles: the runtime stage installs a package for every shared library the built binaries
  need, runs as a non-root user, exposes the ports and health-checks with argserve-cli.
- docker-compose: `docker-compose config` accepts it and the files it mounts exist.
- Kubernetes: every manifest parses and hangs together (probes, ports, selectors, grace period
  versus the server's drain flags), and the ConfigMap's flags start the real server.
- Prometheus: `promtool check config` passes, and a real Prometheus scrapes a real argserve and
  sees exactly the traffic sent, while a target with nothing listening reads as down.
- Grafana: the dashboard uses only metrics and labels a live server exports, and every panel
  query runs on that Prometheus (returning data, except panels about failures).
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import BIN_DIR, Server, many_sequences, run_cli, write_fasta

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "argserve.json"
GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"

GRPC_PORT = 50051
METRICS_PORT = 9464
WAIT_SECONDS = 60
TRAFFIC_SEQUENCES = 10
TRAFFIC_BATCH = 4  # -> 3 Classify requests of 4, 4 and 2 sequences.

# Labels Prometheus attaches itself, and the histogram bucket label.
SCRAPE_LABELS = {"job", "instance", "le"}


# --------------------------------------------------------------------------------------------
# Small helpers


def parse_duration(text: str) -> float:
    """Seconds in an Abseil duration flag value such as 30s, 1m30s, 500ms or 0."""
    if text == "0":
        return 0.0
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dockerfile_stages(path: Path) -> list[list[str]]:
    """Instructions (continuation lines joined, comments dropped) grouped by build stage."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#"):  # Comments go, even inside a continued instruction.
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(" ".join(current.split()))
        current = ""
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def apt_installed(instructions: list[str]) -> set[str]:
    packages: set[str] = set()
    for line in instructions:
        if not line.startswith("RUN "):
            continue
        for command in re.split(r"&&|;", line[4:]):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                packages.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
    return packages


@functools.lru_cache(maxsize=None)
def needed_packages(binary: Path) -> dict[str, str]:
    """soname -> Debian package, for each library the binary links to directly (DT_NEEDED)."""
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    assert sonames, f"no NEEDED entries in {binary}"
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=True).stdout, re.M))
    candidates = {}
    for soname in sonames:
        assert soname in resolved, f"{binary.name}: {soname} not found by the dynamic loader"
        path = resolved[soname]
        # With merged /usr, dpkg may know the file under /lib or /usr/lib, or only its real name.
        other = path[4:] if path.startswith("/usr/") else "/usr" + path
        candidates[soname] = [path, other, os.path.realpath(path)]
    # One dpkg call with exact paths: fast, where a pattern per library would scan everything.
    found = subprocess.run(["dpkg", "-S", *{c for cs in candidates.values() for c in cs}],
                           capture_output=True, text=True)
    owners = {}
    for line in found.stdout.splitlines():
        packages, path = line.split(": ", 1)
        owners[path] = packages.split(",")[0].split(":")[0].strip()
    result = {}
    for soname, paths in candidates.items():
        owner = next((owners[p] for p in paths if p in owners), None)
        assert owner, f"no Debian package owns {soname} (needed by {binary.name})"
        result[soname] = owner
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for(condition, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.25):
    """Polls condition() until it returns something truthy; fails with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Dockerfiles


def runtime_stage(name: str) -> list[str]:
    stages = dockerfile_stages(ROOT / name)
    assert len(stages) >= 2, f"{name} should be multi-stage"
    return stages[-1]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_runtime_stage(name):
    stage = runtime_stage(name)
    assert stage[0].split()[1].startswith("debian:"), stage[0]
    assert stage[0].endswith("-slim AS runtime"), "runtime stage should be debian:*-slim"
    users = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "runtime must not run as root"
    exposed = {int(p) for line in stage if line.startswith("EXPOSE ") for p in line.split()[1:]}
    assert exposed == {GRPC_PORT, METRICS_PORT}
    health = next(line for line in stage if line.startswith("HEALTHCHECK "))
    assert f'"argserve-cli", "health", "--target", "127.0.0.1:{GRPC_PORT}"' in health
    entrypoint = next(line for line in stage if line.startswith("ENTRYPOINT "))
    assert json.loads(entrypoint.split(" ", 1)[1]) == ["argserve"]
    cmd = json.loads(next(line for line in stage if line.startswith("CMD ")).split(" ", 1)[1])
    assert f"--address=0.0.0.0:{GRPC_PORT}" in cmd and f"--metrics_address=0.0.0.0:{METRICS_PORT}" in cmd
    assert "--model=/opt/argserve/model/argserve-default.pt" in cmd
    assert any(line.startswith("COPY ") and line.endswith(" /opt/argserve/model/argserve-default.pt")
               for line in stage), "the default model must be baked in where CMD points"
    builder = "\n".join(dockerfile_stages(ROOT / name)[0])
    assert "-DARGSERVE_BUILD_TESTS=OFF" in builder


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfile_runtime_packages_cover_the_binaries(name):
    """The runtime image cannot be built here, so check its package list against the binaries."""
    if not (shutil.which("readelf") and shutil.which("dpkg")):
        pytest.skip("needs readelf (binutils) and dpkg")
    installed = apt_installed(runtime_stage(name))
    # In debian:*-slim already; everything else has to be installed explicitly.
    base = {"libc6", "libgcc-s1", "libstdc++6"}
    missing = {}
    for binary in ("argserve", "argserve-cli"):
        for soname, package in needed_packages(BIN_DIR / binary).items():
            # The CUDA image ships the official LibTorch instead of Debian's.
            if name == "Dockerfile.cuda" and package.startswith("libtorch"):
                continue
            if package not in base | installed:
                missing[soname] = package
    assert not missing, f"{name}: runtime stage lacks packages for {missing}"


def test_dockerignore_keeps_local_state_out():
    patterns = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {"build", "data", "runs"} <= patterns
    # What the image build reads must stay in the context: every folder CMake configures, the
    # dependency script and the default model's folder.
    needed = set(re.findall(r"^add_subdirectory\((\w+)\)", (ROOT / "CMakeLists.txt").read_text(), re.M))
    needed |= {"CMakeLists.txt", "scripts", "model"}
    assert needed >= {"proto", "model", "server", "client"}
    for path in needed:
        assert not any(fnmatch.fnmatch(path, pattern) for pattern in patterns), f"{path} is docker-ignored"


# --------------------------------------------------------------------------------------------
# docker-compose


@pytest.fixture(scope="module")
def compose() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose)")
    result = subprocess.run([exe, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def bind_mounts(service: dict) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (short or long volume syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        elif volume.get("type") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        if source.startswith(("/", ".")):  # Otherwise a named volume.
            mounts[target] = Path(source)
    return mounts


def compose_flags(service: dict) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in service["command"] if arg.startswith("--") and "=" in arg)


def test_compose_config_is_valid(compose):
    services = compose["services"]
    assert set(services) == {"argserve", "prometheus", "grafana"}
    argserve = services["argserve"]
    assert {(p["target"], p["published"]) for p in argserve["ports"]} >= {(GRPC_PORT, GRPC_PORT),
                                                                          (METRICS_PORT, METRICS_PORT)}
    flags = compose_flags(argserve)
    assert flags["address"] == f"0.0.0.0:{GRPC_PORT}"
    assert flags["metrics_address"] == f"0.0.0.0:{METRICS_PORT}"
    drain = parse_duration(flags.get("shutdown_delay", "0")) + parse_duration(flags.get("grace_period", "30s"))
    assert parse_duration(argserve["stop_grace_period"]) > drain
    # Every bind-mounted host file or folder exists (compose would create a missing one as an
    # empty root-owned folder and the service would start misconfigured).
    for name, service in services.items():
        for source in bind_mounts(service).values():
            assert source.exists(), f"{name}: missing {source}"


def test_compose_monitoring_is_wired_together(compose):
    services = compose["services"]
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [t for job in scrape["scrape_configs"] if job["job_name"] == "argserve"
               for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"argserve:{METRICS_PORT}"]
    mounts = bind_mounts(services["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    for rule_file in scrape.get("rule_files", []):
        assert mounts[f"/etc/prometheus/{rule_file}"] == PROMETHEUS_CONFIG.parent / rule_file

    datasource = yaml.safe_load(GRAFANA_DATASOURCES.read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and datasource["type"] == "prometheus"
    provider = yaml.safe_load(GRAFANA_DASHBOARDS.read_text())["providers"][0]
    grafana_mounts = bind_mounts(services["grafana"])
    assert grafana_mounts[provider["options"]["path"]] == DASHBOARD.parent
    assert grafana_mounts["/etc/grafana/provisioning"] == GRAFANA_DATASOURCES.parent.parent
    dashboard = json.loads(DASHBOARD.read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] == datasource["uid"]


# --------------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    """Every manifest in deploy/k8s by kind/name."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_documents(path):
            for key in ("apiVersion", "kind", "metadata"):
                assert key in doc, f"{path.name}: a document lacks {key}"
            assert doc["metadata"].get("name"), f"{path.name}: {doc['kind']} without metadata.name"
            assert "namespace" not in doc["metadata"], "leave the namespace to kubectl -n / kustomize"
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def of_kind(objects: dict, kind: str) -> list[dict]:
    return [o for o in objects.values() if o["kind"] == kind]


@pytest.fixture(scope="module")
def deployment(k8s) -> dict:
    (only,) = of_kind(k8s, "Deployment")
    return only


def pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_ports(deployment: dict) -> dict[str, int]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def configmap_flags(k8s: dict, deployment: dict) -> tuple[Path, list[str]]:
    """(flag file path inside the pod, its lines) for the ConfigMap passed with --flagfile."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flagfiles = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--flagfile=")]
    assert len(flagfiles) == 1, "flags come from the ConfigMap through exactly one --flagfile"
    flagfile = Path(flagfiles[0])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == flagfile.parent)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmap = k8s[f"ConfigMap/{volume['configMap']['name']}"]
    lines = configmap["data"][flagfile.name].splitlines()
    return flagfile, [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present


def test_k8s_objects_present(k8s):
    kinds = sorted(o["kind"] for o in k8s.values())
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service",
                     "Service"]
    versions = {o["kind"]: o["apiVersion"] for o in k8s.values()}
    assert versions["Deployment"] == "apps/v1"
    assert versions["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert versions["PodDisruptionBudget"] == "policy/v1"


def test_deployment_probes_resources_and_drain(k8s, deployment):
    spec = deployment["spec"]
    assert selects(spec["selector"]["matchLabels"], pod_labels(deployment))
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    ports = container_ports(deployment)
    assert ports == {"grpc": GRPC_PORT, "metrics": METRICS_PORT}

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        # Kubernetes' gRPC probe takes a port number, and no service name means the whole server.
        assert container[probe]["grpc"]["port"] == ports["grpc"], probe
        assert "service" not in container[probe]["grpc"], probe

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind

    _, flags = configmap_flags(k8s, deployment)
    values = dict(f[2:].split("=", 1) for f in flags)
    assert values["address"].endswith(f":{ports['grpc']}")
    assert values["metrics_address"].endswith(f":{ports['metrics']}")
    drain = parse_duration(values["shutdown_delay"]) + parse_duration(values["grace_period"])
    assert parse_duration(values["shutdown_delay"]) > 0, "without a delay, clients race the endpoint update"
    assert pod["terminationGracePeriodSeconds"] > drain

    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_services_select_the_pods_and_reach_container_ports(k8s, deployment):
    services = {s["metadata"]["name"]: s for s in of_kind(k8s, "Service")}
    ports = container_ports(deployment)
    headless = [s for s in services.values() if s["spec"].get("clusterIP") == "None"]
    normal = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
    assert len(headless) == 1 and len(normal) == 1
    assert normal[0]["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert headless[0]["metadata"]["name"] == "argserve-headless"  # Named in docs and the README.
    for service in services.values():
        assert selects(service["spec"]["selector"], pod_labels(deployment)), service["metadata"]["name"]
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            number = ports[target] if isinstance(target, str) else target
            assert number in ports.values(), f"{service['metadata']['name']}: no container port {target}"
        grpc_ports = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
        assert grpc_ports and grpc_ports[0]["port"] == GRPC_PORT


def test_hpa_and_pdb_follow_the_deployment(k8s, deployment):
    (hpa,) = of_kind(k8s, "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment",
                                                                      deployment["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
    # With one replica, the PodDisruptionBudget would block every node drain or leave no one serving.
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "cpu" in container["resources"]["requests"], "CPU utilization is relative to the request"

    (pdb,) = of_kind(k8s, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(deployment))
    assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])


def test_kustomize_renders():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (not a Debian package); the structural checks above still ran")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(rendered) == 6
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("argserve:")


# --------------------------------------------------------------------------------------------
# A live server configured by the ConfigMap, and a real Prometheus scraping it


@pytest.fixture(scope="module")
def server(tmp_path_factory, k8s, deployment):
    """argserve started with the ConfigMap's flags, except where it listens and which model."""
    workdir = tmp_path_factory.mktemp("deploy-server")
    _, flags = configmap_flags(k8s, deployment)
    local = [f for f in flags if f.split("=", 1)[0] not in ("--address", "--metrics_address", "--model")]
    flagfile = workdir / "argserve.flags"
    flagfile.write_text("".join(f + "\n" for f in local))
    # conftest's listen flags come first; the ConfigMap's remaining flags go after them.
    s = Server(workdir, f"--flagfile={flagfile}").wait_ready()
    yield s
    s.kill()


@pytest.fixture(scope="module")
def traffic(server, tmp_path_factory) -> int:
    """The only calls this module's server receives: TRAFFIC_SEQUENCES sequences. Returns that count."""
    fasta = write_fasta(tmp_path_factory.mktemp("traffic") / "in.fasta", many_sequences(TRAFFIC_SEQUENCES, seed=7))
    result = run_cli("classify", "--target", server.target, "--batch-size", str(TRAFFIC_BATCH), "--quiet",
                     str(fasta), timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.decode().splitlines()) == TRAFFIC_SEQUENCES + 1  # With the header line.
    return TRAFFIC_SEQUENCES


def test_configmap_flags_run_the_server_and_it_reports_serving(server):
    # The Dockerfile's HEALTHCHECK command.
    result = run_cli("health", "--target", server.target, "--deadline", "3", timeout=30)
    assert result.returncode == 0 and result.stdout.decode().strip() == "SERVING", result.stderr.decode()


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    """A real Prometheus scraping the live server (job argserve) and a port with nothing listening
    (job argserve-down), every second. Yields its base URL; always stopped at the end."""
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    # Bound but not listening: connections are refused, and no one else can take the port meanwhile.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "argserve", "static_configs": [{"targets": [f"127.0.0.1:{server.metrics_port}"]}]},
            {"job_name": "argserve-down", "static_configs": [{"targets": [f"127.0.0.1:{dead.getsockname()[1]}"]}]},
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen([exe, f"--config.file={workdir / 'prometheus.yml'}",
                                f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n"
                        f"{(workdir / 'prometheus.log').read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(ready, "Prometheus to become ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        dead.close()


def query(prometheus: str, promql: str) -> dict:
    """Runs an instant query; returns the whole API answer (status, data or error)."""
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        return http_json(url)
    except urllib.error.HTTPError as error:  # 400 for a bad query, with a JSON body saying why.
        return json.loads(error.read())


def samples(prometheus: str, promql: str) -> dict[str, float]:
    """Instant query -> {label set as text: value}."""
    answer = query(prometheus, promql)
    assert answer["status"] == "success", f"{promql}: {answer}"
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in answer["data"]["result"]}


def test_prometheus_scrapes_the_exact_traffic(prometheus, traffic):
    requests = -(-traffic // TRAFFIC_BATCH)

    def scraped():
        got = (samples(prometheus, 'up{job="argserve"}'),
               samples(prometheus, 'sum(argserve_sequences_total{job="argserve", rpc="Classify", code="OK"})'),
               samples(prometheus, 'sum(argserve_requests_total{job="argserve", rpc="Classify", code="OK"})'))
        return got if [list(g.values()) for g in got] == [[1.0], [float(traffic)], [float(requests)]] else None

    up, sequences, calls = wait_for(scraped, f"Prometheus to see {traffic} sequences in {requests} requests")
    assert list(up.values()) == [1.0]
    # Nothing else was counted: no failed calls at all (the other codes' series exist from
    # start-up, at zero).
    failed = samples(prometheus, 'argserve_requests_total{job="argserve", code!="OK"}')
    assert failed and set(failed.values()) == {0.0}


def test_prometheus_reports_a_target_with_nothing_listening_as_down(prometheus):
    up = wait_for(lambda: samples(prometheus, 'up{job="argserve-down"}'), "a scrape of the dead target")
    assert list(up.values()) == [0.0]
    assert samples(prometheus, 'argserve_requests_total{job="argserve-down"}') == {}
    assert samples(prometheus, '{job="argserve-down", __name__=~"argserve_.*"}') == {}


def test_promtool_accepts_the_prometheus_config():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files it names were checked too.
    assert "SUCCESS" in result.stdout and "rules found" in result.stdout


# --------------------------------------------------------------------------------------------
# Grafana dashboard and alert rules against what the server exports

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}
BUILTIN_SERIES = {"up"}  # Made by Prometheus for every target.


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every panel target."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append((inner["title"], target["expr"]))
    return found


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def metric_and_label_names(promql: str) -> tuple[set[str], set[str]]:
    """Metric names and grouping labels in a PromQL expression (enough for the queries used here)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # Strings may hold anything.
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        labels.update(name.strip() for name in group.split(",") if name.strip())
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(m for m in re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers) if m != "__name__")
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # Range durations, including $__rate_interval.
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\s*(\()?", text):
        word, call = match.group(1), match.group(2)
        if not call and word.lower() not in PROMQL_WORDS:
            names.add(word)
    return names, labels


def exported(metrics_text: str) -> tuple[set[str], set[str]]:
    """Sample names and label names in a /metrics page."""
    names, labels = set(), set()
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            series = line.rsplit(" ", 1)[0]
            names.add(series.split("{", 1)[0])
            if "{" in series:
                labels.update(re.findall(r'([A-Za-z_]\w*)="', series.split("{", 1)[1]))
    return names, labels


@pytest.fixture(scope="module")
def exported_names(server, traffic, tmp_path_factory) -> tuple[set[str], set[str]]:
    """Metric and label names a live server exports. Labelled families appear only once used, so
    besides the module's traffic, a second server (long queue delay) gets a call whose deadline
    passes while queued, to export argserve_sequences_dropped_total too."""
    names, labels = exported(server.metrics())
    slow = Server(tmp_path_factory.mktemp("deploy-slow"), "--max_queue_delay=1s").wait_ready()
    try:
        result = run_cli("classify", "--target", slow.target, "--deadline", "0.2", "--retries", "0", "--quiet",
                         "--seq", "q1=MKLVAAGG", timeout=30)
        assert result.returncode != 0  # The deadline passed, as intended.

        def dropped_counted():
            page = slow.metrics()
            return page if "argserve_sequences_dropped_total{" in page else None

        more_names, more_labels = exported(wait_for(dropped_counted, "the dropped-sequence counter", timeout=10))
    finally:
        slow.kill()
    return names | more_names, labels | more_labels


def test_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for wanted in ("request rate", "error", "latency", "queue wait", "batch size", "padding", "queue depth",
                   "sequences / s", "model"):
        assert wanted in titles, wanted


def test_dashboard_and_alerts_use_only_exported_metrics(exported_names):
    names, labels = exported_names
    queries = dashboard_queries() + alert_queries()
    dashboard = json.loads(DASHBOARD.read_text())
    variables = [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for variable in variables:
        metric, label = re.fullmatch(r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", variable).groups()
        queries.append((f"variable {label}", f"{metric}"))
    used = set()
    for title, promql in queries:
        metrics, grouping = metric_and_label_names(promql)
        assert metrics, f"{title}: no metric found in {promql!r}"
        unknown = metrics - names - BUILTIN_SERIES
        assert not unknown, f"{title}: {sorted(unknown)} not exported by argserve"
        unknown_labels = grouping - labels - SCRAPE_LABELS
        assert not unknown_labels, f"{title}: labels {sorted(unknown_labels)} not exported by argserve"
        used |= metrics
    # The queries were really parsed: the main series are among them.
    assert {"argserve_requests_total", "argserve_request_duration_seconds_bucket", "argserve_queue_wait_seconds_bucket",
            "argserve_batch_size_bucket", "argserve_padding_efficiency", "argserve_queue_depth",
            "argserve_model_info"} <= used


def grafana_to_promql(expr: str) -> str:
    """Replaces Grafana's variables with what they would hold for the test's Prometheus."""
    return (expr.replace("$__rate_interval", "1m").replace("$job", "argserve").replace("$instance", ".*"))


def test_every_dashboard_and_alert_query_runs_on_prometheus(prometheus, traffic):
    # Syntax first: a bad query fails at once, whatever the data.
    for title, promql in dashboard_queries() + alert_queries():
        answer = query(prometheus, grafana_to_promql(promql))
        assert answer["status"] == "success", f"{title}: {promql}\n{answer.get('error')}"

    # Every panel shows data, except series of failures: the traffic had none. (Alert expressions
    # are comparisons, empty while nothing fires, so only their syntax is checked.)
    failures = ('code!="OK"', "dropped")
    panels = [(t, grafana_to_promql(q)) for t, q in dashboard_queries() if not any(f in q for f in failures)]
    # rate() needs two scrapes inside its window; give Prometheus a few seconds for that.
    deadline = time.monotonic() + 30
    while True:
        empty = [t for t, q in panels if not samples(prometheus, q)]
        if not empty:
            break
        assert time.monotonic() < deadline, f"no data after 30 s in: {empty}"
        time.sleep(0.5)

    jobs = http_json(f"{prometheus}/api/v1/label/job/values?match[]=argserve_model_info")["data"]
    assert jobs == ["argserve"]  # What the dashboard's job variable offers.
