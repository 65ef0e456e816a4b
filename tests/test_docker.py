"""Every generated Dockerfile, built and run by a real Docker engine.

A private dockerd (tests/support/docker.py) builds look-alikes of the base images a generated
Dockerfile meets: the official pytorch/pytorch layouts up to 2.9 (conda at /opt/conda, python on
PATH) and since 2.10 (the system Python of Ubuntu 24.04 with its PEP 668 marker, user ubuntu
holding uid 1000, with and without `python`), and python:X.Y-slim. Each look-alike is tagged with
the exact name the Dockerfile's FROM uses, so the legacy builder never pulls. The builds reach the
fixture indexes on 127.0.0.1 through --network host.

Without docker.io and mmdebstrap (or root) the module is skipped with the reason; CI installs
them and sets ENVLOCK_TEST_REQUIRE_DOCKER=1, which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.docker import (
    REQUIRED,
    Built,
    Engine,
    EngineUnavailableError,
    layout_image,
    private_engine,
    why_unavailable,
)
from tests.support.wheels import Dist, build_wheel
from tests.test_lock_e2e import write_spec

OFFICIAL = "pytorch/pytorch:2.6.0-cuda12.6-cudnn9-runtime"
SLIM = "python:3.11-slim"
# What an official image holds: the torch family and the CUDA runtime torch pulls in.
IMAGE_PACKAGES = re.compile(r"^(torch|torchvision|torchaudio|nvidia-.+-cu\d+|triton)$")


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"ENVLOCK_TEST_REQUIRE_DOCKER=1 but no Docker engine: {reason}")
    pytest.skip(f"no private Docker engine: {reason}")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    reason = why_unavailable()
    if reason is not None:
        _unavailable(reason)
    context = private_engine()
    try:
        started = context.__enter__()
    except EngineUnavailableError as exc:
        _unavailable(str(exc))
    try:
        yield started
    finally:
        context.__exit__(None, None, None)


def _lock(
    project: Path, cli: Cli, packages: str = 'six = "*"\nnumpy = "*"', tail: str = ""
) -> None:
    write_spec(project, packages=packages, tail=tail)
    result = cli("lock")
    assert result.code == 0, result.stderr


def _image_wheels(project: Path, cli: Cli, dest: Path) -> list[Path]:
    """The wheels an official image of this lock holds, fetched from the fixture index."""
    requirements = cli("export", "requirements").stdout
    wheels = []
    for line in requirements.splitlines():
        name, _, rest = line.partition(" @ ")
        if not rest or not IMAGE_PACKAGES.match(name):
            continue
        url = rest.split()[0]
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / url.rsplit("/", 1)[1]
        with urllib.request.urlopen(url, timeout=30) as response:
            target.write_bytes(response.read())
        wheels.append(target)
    assert wheels, requirements
    return wheels


def _export(cli: Cli, *args: str) -> str:
    result = cli("export", "dockerfile", "-o", "docker", *args)
    assert result.code == 0, result.stderr
    return result.stderr


def _try(engine: Engine, project: Path, tag: str, base: tuple[str, str] | None) -> Built:
    """Build project/docker as ``tag``, with ``base`` (image, name) tagged as the FROM name
    for the build (see Engine.as_base)."""
    if base is None:
        return engine.build(project / "docker", tag)
    with engine.as_base(*base):
        return engine.build(project / "docker", tag)


def _build(engine: Engine, project: Path, tag: str, base: tuple[str, str] | None = None) -> str:
    built = _try(engine, project, tag, base)
    assert built.code == 0, built.output[-4000:]
    return built.output


def _run(engine: Engine, image: str, script: str) -> str:
    ran = engine.run(image, "sh", "-c", script)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


PROBE = (
    "id -u; id -un; python3 -c 'import torch, six, numpy; "
    "print(torch.__version__, torch.version.cuda, six.__version__)'"
)


@pytest.fixture
def cu126_project(fixture_env: Path, cli: Cli) -> Path:
    _lock(fixture_env, cli)
    return fixture_env


@pytest.mark.parametrize("layout", ["conda", "system", "system-python"])
def test_default_dockerfile_builds_and_runs_on_each_official_layout(
    engine: Engine, cu126_project: Path, cli: Cli, tmp_path: Path, layout: str
) -> None:
    base = layout_image(engine, layout, _image_wheels(cu126_project, cli, tmp_path / "w"))
    note = _export(cli)
    assert f"official {OFFICIAL}" in note
    tag = f"envlock-test/out:{layout}"
    try:
        log = _build(engine, cu126_project, tag, (base, OFFICIAL))
        assert "torch 2.6.0+cu126: its RECORD (every file's hash) matches torch-2.6.0" in log
        assert "imports ok: numpy, six" in log  # the smoke test, last step
        lines = _run(engine, tag, PROBE).split()
        assert lines[0] == "1000"
        assert lines[1] == ("ubuntu" if layout.startswith("system") else "envlock")
        assert lines[2:] == ["2.6.0+cu126", "12.6", "1.17.0"] or lines[2:4] == [
            "2.6.0+cu126",
            "12.6",
        ]
        if layout.startswith("system"):
            assert "uid 1000 is ubuntu in the base image" in log
    finally:
        engine.rmi(tag)


def test_a_package_named_like_the_cuda_runtime_but_not_in_the_image_is_installed(
    engine: Engine, fixture_env: Path, cli: Cli, tmp_path: Path
) -> None:
    """nvidia-ml-py (pynvml) matches nvidia-*, but no official image has it: it used to be
    left out of requirements.txt as "provided", and the image then lacked it."""
    _lock(fixture_env, cli, packages='six = "*"\nnumpy = "*"\nnvidia-ml-py = "*"')
    base = layout_image(engine, "conda", _image_wheels(fixture_env, cli, tmp_path / "w"))
    _export(cli)
    tag = "envlock-test/out:nvml"
    try:
        log = _build(engine, fixture_env, tag, (base, OFFICIAL))
        own = next(line for line in log.splitlines() if "the image's own:" in line)
        assert "nvidia-cudnn-cu12 9.5.1.17" in own and "triton 3.2.0" in own, own
        assert "nvidia-ml-py" not in own
        assert "imports ok: numpy, nvidia_ml_py, six" in log
        assert _run(engine, tag, "python3 -c 'import nvidia_ml_py; print(1)'").strip() == "1"
    finally:
        engine.rmi(tag)


def test_user_option_names_the_user_the_image_runs_as(
    engine: Engine, cu126_project: Path, cli: Cli, tmp_path: Path
) -> None:
    base = layout_image(engine, "conda", _image_wheels(cu126_project, cli, tmp_path / "w"))
    _export(cli, "--user", "ml_team")
    tag = "envlock-test/out:user"
    try:
        _build(engine, cu126_project, tag, (base, OFFICIAL))
        assert _run(engine, tag, "id -u; id -un; touch /workspace/x && echo writable").split() == [
            "1000",
            "ml_team",
            "writable",
        ]
    finally:
        engine.rmi(tag)


def test_python_slim_base_installs_the_whole_lock(
    engine: Engine, cu126_project: Path, cli: Cli
) -> None:
    """No official image wanted: python:3.11-slim (its gid 1000 taken by a group) gets it all."""
    slim = layout_image(engine, "slim", [])
    note = _export(cli, "--base", "python")
    assert f"uses {SLIM}" in note
    tag = "envlock-test/out:slim"
    try:
        log = _build(engine, cu126_project, tag, (slim, SLIM))
        assert "imports ok: numpy, six" in log
        assert _run(engine, tag, PROBE).split()[:4] == ["1000", "envlock", "2.6.0+cu126", "12.6"]
    finally:
        engine.rmi(tag)


def test_a_cpu_variant_lock_builds_on_python_slim(
    engine: Engine, fixture_env: Path, cli: Cli
) -> None:
    """Multi-variant locks: each variant's Dockerfile is its own build (cpu: no official image)."""
    _lock(
        fixture_env, cli, tail='[variants.cpu]\ncuda = "cpu"\n\n[variants.cu126]\ncuda = "12.6"\n'
    )
    slim = layout_image(engine, "slim", [])
    note = _export(cli, "--variant", "cpu")
    assert f"uses {SLIM}" in note
    tag = "envlock-test/out:cpu"
    try:
        _build(engine, fixture_env, tag, (slim, SLIM))
        assert _run(engine, tag, PROBE).split()[2:4] == ["2.6.0+cpu", "None"]
    finally:
        engine.rmi(tag)


def test_a_tampered_hash_fails_the_build(engine: Engine, cu126_project: Path, cli: Cli) -> None:
    slim = layout_image(engine, "slim", [])
    _export(cli, "--base", "python")
    requirements = cu126_project / "docker" / "requirements.txt"
    text = requirements.read_text()
    six_hash = re.search(r"six @ \S+ \\\n\s+--hash=sha256:([0-9a-f]{64})", text)
    assert six_hash is not None, text
    requirements.write_text(text.replace(six_hash.group(1), "0" * 64))
    built = _try(engine, cu126_project, "envlock-test/out:tampered", (slim, SLIM))
    assert built.code != 0
    assert "DO NOT MATCH THE HASHES" in built.output


def test_a_base_with_another_build_of_the_locked_torch_fails_the_build(
    engine: Engine, cu126_project: Path, cli: Cli, tmp_path: Path
) -> None:
    """Same version, same CUDA, other files: the RECORD comparison is what catches it."""
    wheels = _image_wheels(cu126_project, cli, tmp_path / "w")
    swapped = [w for w in wheels if not w.name.startswith("torch-")]
    other = Dist(
        name="torch",
        version="2.6.0+cu126",
        tags=("cp311-cp311-manylinux_2_28_x86_64",),
        files=(("torch/_extra.py", "print('not the locked build')\n"),),
    )
    swapped.append(build_wheel(other, "cp311-cp311-manylinux_2_28_x86_64", tmp_path / "other"))
    base = layout_image(engine, "conda", swapped)
    _export(cli)
    built = _try(engine, cu126_project, "envlock-test/out:swapped", (base, OFFICIAL))
    assert built.code != 0
    assert "is not the locked build: its files differ from the RECORD of torch-2.6.0+cu126" in (
        built.output
    )


def test_a_torch_without_record_is_said_to_be_unproven(
    engine: Engine, cu126_project: Path, cli: Cli, tmp_path: Path
) -> None:
    """A conda-installed torch leaves no RECORD: the build says what it could not prove."""
    wheels = _image_wheels(cu126_project, cli, tmp_path / "w")
    base = layout_image(engine, "conda-norecord", wheels)
    _export(cli)
    tag = "envlock-test/out:norecord"
    try:
        log = _build(engine, cu126_project, tag, (base, OFFICIAL))
        assert "cannot be proven to be torch-2.6.0+cu126-" in log
        assert "installer (conda) left no RECORD" in log
    finally:
        engine.rmi(tag)


@pytest.fixture
def jupyter_project(fixture_env: Path, cli: Cli) -> Path:
    _lock(fixture_env, cli, packages='six = "*"\nnumpy = "*"\njupyterlab = "*"')
    return fixture_env


def _get_json(url: str, deadline: float) -> dict[str, object]:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                data = json.loads(response.read())
                assert isinstance(data, dict)
                return data
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_jupyter_image_runs_the_locked_jupyterlab_on_all_interfaces(
    engine: Engine, jupyter_project: Path, cli: Cli, tmp_path: Path
) -> None:
    base = layout_image(engine, "system", _image_wheels(jupyter_project, cli, tmp_path / "w"))
    note = _export(cli, "--jupyter")
    assert "-p 8888:8888 -e JUPYTER_TOKEN -it my-env" in note
    dockerfile = (jupyter_project / "docker" / "Dockerfile").read_text()
    assert "EXPOSE 8888" in dockerfile
    assert "jupyterlab @ " in (jupyter_project / "docker" / "requirements.txt").read_text()
    tag = "envlock-test/out:jupyter"
    container = ""
    try:
        _build(engine, jupyter_project, tag, (base, OFFICIAL))
        started = engine.docker("run", "-d", "--network", "host", "-e", "JUPYTER_TOKEN=s3cret", tag)
        container = started.stdout.strip()
        page = _get_json("http://127.0.0.1:8888/", time.monotonic() + 30)
        assert page["uid"] == 1000
        assert page["token"] is True
        assert page["argv"] == ["lab", "--ip=0.0.0.0", "--port=8888", "--no-browser"]
    finally:
        if container:
            engine.docker("rm", "-f", container, check=False)
        engine.rmi(tag)


def test_jupyter_without_jupyterlab_in_the_lock_is_refused(cu126_project: Path, cli: Cli) -> None:
    result = cli("export", "dockerfile", "-o", "docker", "--jupyter")
    assert result.code != 0
    assert "--jupyter needs JupyterLab in the lock" in result.stderr
    assert "hint: Add jupyterlab" in result.stderr
    assert not (cu126_project / "docker").exists()


def test_dockerignore_keeps_the_context_to_the_build_files(cu126_project: Path, cli: Cli) -> None:
    _export(cli)
    ignore = (cu126_project / "docker" / ".dockerignore").read_text().splitlines()
    assert [line for line in ignore if not line.startswith("#")] == [
        "*",
        "!requirements.txt",
        "!envlock-check.py",
    ]
    with contextlib.suppress(FileNotFoundError):
        (cu126_project / "docker" / ".dockerignore").unlink()


def _push(engine: Engine, image: str, tag: str) -> str:
    """Push ``image`` to the private registry as ``tag``; the digest it now serves."""
    assert engine.registry is not None
    remote = f"{engine.registry.removeprefix('http://')}/{tag}"
    engine.tag(image, remote)
    pushed = engine.docker("push", remote, timeout=300)
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
    assert found is not None, pushed.stdout
    engine.rmi(remote)
    return found.group(1)


def test_the_lock_pins_the_base_by_the_digest_the_registry_serves(
    engine: Engine,
    fixture_env: Path,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tag can move; the digest the lock recorded cannot. The build pulls by that digest
    (through the engine's mirror: the private registry), not by the tag."""
    if engine.registry is None:
        _unavailable("docker-registry is not installed (apt-get install docker-registry)")
    assert engine.registry is not None
    _lock(fixture_env, cli)
    base = layout_image(engine, "conda", _image_wheels(fixture_env, cli, tmp_path / "w"))
    digest = _push(engine, base, OFFICIAL)
    monkeypatch.setenv("ENVLOCK_DOCKER_REGISTRY", engine.registry)
    relocked = cli("lock", "--upgrade")
    assert relocked.code == 0, relocked.stderr
    lock = (fixture_env / "pylock.toml").read_text()
    assert f'"{OFFICIAL}" = "{digest}"' in lock
    # the devel tag was never pushed: said, not invented
    assert "the registry has no pytorch/pytorch:2.6.0-cuda12.6-cudnn9-devel" in relocked.stderr
    _export(cli)
    dockerfile = (fixture_env / "docker" / "Dockerfile").read_text()
    assert f"FROM {OFFICIAL}@{digest}\n" in dockerfile
    tag = "envlock-test/out:pinned"
    try:
        with engine.exclusive():
            engine.rmi(OFFICIAL)  # nothing local by that name: the build must pull by digest
            log = _build(engine, fixture_env, tag)
        assert "imports ok: numpy, six" in log
    finally:
        engine.rmi(tag, f"pytorch/pytorch@{digest}")


def test_a_digest_the_user_pins_wins_and_the_build_enforces_it(
    engine: Engine, fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.registry is None:
        _unavailable("docker-registry is not installed (apt-get install docker-registry)")
    assert engine.registry is not None
    wrong = "sha256:" + "e" * 64
    _lock(fixture_env, cli, tail=f'[docker]\ndigests = {{ "{OFFICIAL}" = "{wrong}" }}\n')
    monkeypatch.setenv("ENVLOCK_DOCKER_REGISTRY", engine.registry)
    assert f'"{OFFICIAL}" = "{wrong}"' in (fixture_env / "pylock.toml").read_text()
    _export(cli)
    assert f"FROM {OFFICIAL}@{wrong}\n" in (fixture_env / "docker" / "Dockerfile").read_text()
    with engine.exclusive():
        engine.rmi(OFFICIAL)
        built = engine.build(fixture_env / "docker", "envlock-test/out:wrong-digest")
    assert built.code != 0
    # FROM itself fails: the mirror has no such manifest (and Docker Hub, asked next, is out
    # of reach here); no local image of that tag can stand in for the digest
    assert f"FROM {OFFICIAL}@{wrong}" in built.output
    assert "Step 2/" not in built.output, built.output[-2000:]
