"""Attacks: dependency confusion for every torch-family name, credential leakage across every
command's output, logs and files, and hostile ambient configuration for every command."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from envlock.errors import ExitCode
from tests.conftest import Cli, Result, assert_refused
from tests.support.catalog import IF_REQUESTED
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec


def _lock(directory: Path) -> Pylock:
    return Pylock.from_dict(tomllib.loads((directory / "pylock.toml").read_text()))


def _package(lock: Pylock, name: str) -> tuple[str, str]:
    found = [p for p in lock.packages if p.name == name]
    assert len(found) == 1, name
    return str(found[0].version), found[0].index or ""


# ---------------------------------------------------------------------------------------
# dependency confusion: the fixture PyPI serves every torch-family name at a higher version


@pytest.mark.parametrize("name", sorted(IF_REQUESTED))
def test_requested_family_package_comes_from_the_variant_index(
    name: str, fixture_env: Path, indexes: StandardIndexes, cli: Cli
) -> None:
    """PyPI has {name} 99.0.0 installable everywhere; the lock takes 1.0.0+cu126 from cu126."""
    write_spec(fixture_env, packages=f'{name} = "*"')
    result = cli("lock")
    assert result.code == 0, result.stderr
    version, index = _package(_lock(fixture_env), name)
    assert version == "1.0.0+cu126"
    assert index == f"{indexes.pytorch_url}/cu126"


def test_always_routed_names_come_from_the_variant_index(
    fixture_env: Path, indexes: StandardIndexes, cli: Cli
) -> None:
    """torch 2.6.9, torchvision 0.21.9, torchaudio 2.6.9 wait on PyPI; none is taken."""
    write_spec(fixture_env, torch_extra="audio = true")
    assert cli("lock").code == 0
    lock = _lock(fixture_env)
    for name, version in (
        ("torch", "2.6.0+cu126"),
        ("torchvision", "0.21.0+cu126"),
        ("torchaudio", "2.6.0+cu126"),
    ):
        assert _package(lock, name) == (version, f"{indexes.pytorch_url}/cu126")


@pytest.mark.parametrize(
    ("cuda", "variant", "triton"),
    [("rocm6.2", "rocm6.2.4", "pytorch-triton-rocm"), ("xpu", "xpu", "pytorch-triton-xpu")],
)
def test_by_kind_triton_comes_from_the_variant_index(
    cuda: str, variant: str, triton: str, fixture_env: Path, indexes: StandardIndexes, cli: Cli
) -> None:
    """ROCm and XPU torch need their own triton, which the PyPI fixture also serves at a
    higher version (the names are not PyPI's to give)."""
    write_spec(fixture_env, cuda=cuda, vision=False)
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert _package(_lock(fixture_env), triton) == ("3.2.0", f"{indexes.pytorch_url}/{variant}")


def test_family_package_pulled_in_from_pypi_is_refused(
    fixture_env: Path, indexes: StandardIndexes, cli: Cli
) -> None:
    """A PyPI package depending on torchao would bring torchao 99.0.0 from PyPI into a cu126
    lock; envlock refuses and says how to pin it, and naming it fixes the lock."""
    write_spec(fixture_env, packages='helper-pulls-torchao = "*"')
    refused = cli("lock")
    assert_refused(refused, ExitCode.RESOLUTION)
    assert "torchao 99.0.0" in refused.stderr
    assert "Name torchao in [packages]" in refused.stderr
    assert not (fixture_env / "pylock.toml").exists()

    write_spec(fixture_env, packages='helper-pulls-torchao = "*"\ntorchao = "*"')
    assert cli("lock").code == 0
    assert _package(_lock(fixture_env), "torchao") == (
        "1.0.0+cu126",
        f"{indexes.pytorch_url}/cu126",
    )


def test_family_package_from_pypi_is_fine_where_torch_comes_from_pypi(
    fixture_env: Path, indexes: StandardIndexes, cli: Cli
) -> None:
    """With source = "pypi" every torch-family package comes from PyPI, consistently."""
    write_spec(
        fixture_env,
        cuda="12.4",
        torch_extra='source = "pypi"',
        packages='helper-pulls-torchao = "*"',
    )
    result = cli("lock")
    assert result.code == 0, result.stderr
    assert _package(_lock(fixture_env), "torchao")[1] == indexes.pypi_url


# ---------------------------------------------------------------------------------------
# credentials: used where needed, never shown or written

PYPI_SECRET = "pypi-S3CRET-token-1f2e"
TORCH_SECRET = "torch-S3CRET-pass-9a8b"
AMBIENT_SECRET = "ambient-S3CRET-7c6d"


@pytest.fixture
def authenticated(
    fixture_env: Path,
    indexes: StandardIndexes,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """Both fixture indexes demand credentials, given only inside ENVLOCK_*_INDEX_URL."""
    cache = tmp_path_factory.mktemp("auth-cache")
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(cache))
    monkeypatch.setenv(
        "ENVLOCK_PYPI_INDEX_URL",
        indexes.pypi_url.replace("http://", f"http://__token__:{PYPI_SECRET}@"),
    )
    monkeypatch.setenv(
        "ENVLOCK_PYTORCH_INDEX_URL",
        indexes.pytorch_url.replace("http://", f"http://alice:{TORCH_SECRET}@"),
    )
    indexes.pypi_server.require_auth("__token__", PYPI_SECRET)
    indexes.pytorch_server.require_auth("alice", TORCH_SECRET)
    try:
        yield cache
    finally:
        indexes.pypi_server.require_auth(None, None)
        indexes.pytorch_server.require_auth(None, None)


def _leaks(root: Path) -> list[str]:
    """The files under ``root`` that hold a secret (there must be files to search)."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert files, f"nothing to search under {root}"
    secrets = [x.encode() for x in (PYPI_SECRET, TORCH_SECRET, AMBIENT_SECRET)]
    return [str(p) for p in files if any(x in p.read_bytes() for x in secrets)]


def test_credentials_never_reach_output_logs_or_files(
    authenticated: Path, fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    # Secrets envlock does not use but finds in the environment: never echoed either.
    monkeypatch.setenv("UV_INDEX_PYTORCH_PASSWORD", AMBIENT_SECRET)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://u:{AMBIENT_SECRET}@127.0.0.1:9/simple")
    monkeypatch.setenv("HTTPS_PROXY", f"http://u:{AMBIENT_SECRET}@127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    runs: list[tuple[tuple[str, ...], Result]] = []

    def run(*args: str) -> Result:
        # A real process each: --debug logging is set up once per process.
        done = subprocess.run(
            [sys.executable, "-m", "envlock", "--debug", *args],
            cwd=fixture_env,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=False,
        )
        result = Result(done.returncode, done.stdout, done.stderr)
        runs.append((args, result))
        return result

    assert run("lock").code == 0
    assert run("lock", "--check").code == 0
    assert run("lock", "--upgrade", "--hash-missing", "download").code == 0
    assert run("sync", "--venv", ".venv").code == 0
    assert run("sync", "--venv", ".venv-pip", "--installer", "pip").code == 0
    assert run("verify", "--venv", ".venv", "--deep").code == 0
    assert run("export", "requirements", "-o", "requirements.txt").code == 0
    assert run("export", "conda", "-o", "environment.yml").code == 0
    assert run("export", "dockerfile", "-o", "image").code == 0
    assert run("bundle", "-o", "offline").code == 0
    assert run("diff", "pylock.toml", "offline/pylock.toml").code == 0
    assert run("doctor").code in (0, 1)
    # failures print uv's explanation and (with --debug) tracebacks: nothing leaks there either
    spec = fixture_env / "torchenv.toml"
    spec.write_text(spec.read_text().replace('six = "*"', 'six = "*"\nno-such-pkg = "*"'))
    assert run("lock").code != 0

    for args, result in runs:
        text = result.stdout + result.stderr
        for secret in (PYPI_SECRET, TORCH_SECRET, AMBIENT_SECRET):
            assert secret not in text, args
    assert any("debug: run:" in r.stderr for _, r in runs)  # the logs were really on
    assert _leaks(fixture_env) == []
    assert _leaks(authenticated) == []  # envlock's uv cache


def test_wrong_credentials_fail_without_echoing_them(
    authenticated: Path, fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec(fixture_env)
    wrong = os.environ["ENVLOCK_PYTORCH_INDEX_URL"].replace(TORCH_SECRET, "wr0ng-S3CRET")
    monkeypatch.setenv("ENVLOCK_PYTORCH_INDEX_URL", wrong)
    for args in (("lock",), ("--debug", "lock")):
        result = cli(*args)
        assert result.code == ExitCode.INDEX, result.stderr
        assert "401" in result.stderr
        assert "wr0ng-S3CRET" not in result.stdout + result.stderr
    assert not (fixture_env / "pylock.toml").exists()


# ---------------------------------------------------------------------------------------
# hostile ambient configuration, for every command


def _hostile(root: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a shared machine or a careless dotfile might carry: other indexes, constraints
    that would change versions, a different cache, pre-releases, files not to be trusted."""
    constraints = root / "constraints.txt"
    constraints.write_text("six==1.16.0\nnumpy==2.2.0\ntorch==9.9.9\n")
    config = root / "xdg"
    (config / "uv").mkdir(parents=True)
    (config / "uv" / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\n')
    (config / "pip").mkdir(parents=True)
    (config / "pip" / "pip.conf").write_text(
        f"[global]\nindex-url = http://127.0.0.1:9/\nconstraint = {constraints}\n"
    )
    (project / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\n')
    (project / "pip.conf").write_text("[global]\nno-deps = false\n")
    for key, value in {
        "XDG_CONFIG_HOME": str(config),
        "UV_INDEX_URL": "http://127.0.0.1:9/simple",
        "UV_DEFAULT_INDEX": "http://127.0.0.1:9/simple",
        "UV_EXTRA_INDEX_URL": "http://127.0.0.1:9/extra",
        "UV_FIND_LINKS": str(root),
        "UV_CONSTRAINT": str(constraints),
        "UV_OVERRIDE": str(constraints),
        "UV_EXCLUDE_NEWER": "2000-01-01T00:00:00Z",
        "UV_PRERELEASE": "allow",
        "UV_NO_CACHE": "1",
        "UV_OFFLINE": "1",
        "UV_PYTHON": "3.7",
        "UV_TORCH_BACKEND": "cu118",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "http://127.0.0.1:9/extra",
        "PIP_FIND_LINKS": str(root),
        "PIP_CONSTRAINT": str(constraints),
        "PIP_CONFIG_FILE": str(config / "pip" / "pip.conf"),
        "PIP_NO_INDEX": "1",
        "PIP_REQUIRE_VIRTUALENV": "0",
        "VIRTUAL_ENV": str(root / "some-other-venv"),
        "CONDA_PREFIX": str(root / "conda"),
    }.items():
        monkeypatch.setenv(key, value)


def _outputs(project: Path, cli: Cli, tag: str) -> dict[str, bytes]:
    """Run every command; what each produced, keyed by command."""
    out: dict[str, bytes] = {}
    for args in (
        ("lock", "--upgrade"),
        ("lock", "--check"),
        ("sync", "--venv", f".venv-{tag}"),
        ("sync", "--venv", f".venv-{tag}-pip", "--installer", "pip"),
        ("verify", "--venv", f".venv-{tag}", "--deep"),
        ("verify", "--venv", f".venv-{tag}-pip"),
        ("export", "requirements", "-o", f"req-{tag}.txt"),
        ("export", "conda", "-o", f"env-{tag}.yml"),
        ("export", "dockerfile", "-o", f"image-{tag}"),
        ("bundle", "-o", f"bundle-{tag}"),
        ("diff", "pylock.toml", f"bundle-{tag}/pylock.toml", "--format", "json"),
        ("doctor", "--json"),
    ):
        result = cli(*args)
        assert result.code == 0, (args, result.stderr)
        out[" ".join(a for a in args if tag not in a)] = result.stdout.replace(tag, "T").encode()
    out["pylock.toml"] = (project / "pylock.toml").read_bytes()
    for path in (
        f"req-{tag}.txt",
        f"env-{tag}.yml",
        f"image-{tag}/Dockerfile",
        f"image-{tag}/requirements.txt",
        f"bundle-{tag}/pylock.toml",
    ):
        out[path.replace(tag, "T")] = (project / path).read_bytes().replace(tag.encode(), b"T")
    out["wheels"] = "\n".join(
        sorted(p.name for p in (project / f"bundle-{tag}" / "wheels").iterdir())
    ).encode()
    return out


def test_hostile_ambient_configuration_changes_nothing_for_any_command(
    fixture_env: Path,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    write_spec(fixture_env, packages='six = "*"\nnumpy = "*"')
    assert cli("lock").code == 0
    clean = _outputs(fixture_env, cli, "run1q")
    _hostile(tmp_path_factory.mktemp("hostile"), fixture_env, monkeypatch)
    hostile = _outputs(fixture_env, cli, "run2q")
    assert hostile == clean


def test_netrc_credentials_work_for_every_network_command(
    fixture_env: Path,
    indexes: StandardIndexes,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Credentials in a netrc file (NETRC), none in any URL: lock (uv and envlock's own page
    reads), sync with both installers and bundle authenticate; nothing shows them."""
    home = tmp_path_factory.mktemp("netrc-home")
    netrc = home / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login bob password {TORCH_SECRET}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("ENVLOCK_CACHE_DIR", str(tmp_path_factory.mktemp("netrc-cache")))
    write_spec(fixture_env, packages='six = "*"')
    for server in (indexes.pypi_server, indexes.pytorch_server):
        server.require_auth("bob", TORCH_SECRET)
    try:
        results = [
            cli("lock"),
            cli("sync", "--venv", ".venv"),
            cli("sync", "--venv", ".venv-pip", "--installer", "pip"),
            cli("bundle", "-o", "offline"),
        ]
    finally:
        for server in (indexes.pypi_server, indexes.pytorch_server):
            server.require_auth(None, None)
    for result in results:
        assert result.code == 0, result.stderr
        assert TORCH_SECRET not in result.stdout + result.stderr
    assert _leaks(fixture_env) == []


def test_hashless_file_on_a_private_index_fails_cleanly(
    authenticated: Path, fixture_env: Path, indexes: StandardIndexes, cli: Cli
) -> None:
    """uv 0.13 does not send an index's credentials when it downloads a hashless file of that
    index to hash it, so such a lock fails in uv (401) before envlock's own check: exit 5
    naming the file and the status, nothing written, no secret shown."""
    write_spec(fixture_env)
    indexes.pytorch_server.mangle("/whl/cu126/torch/", "strip-hashes")
    try:
        results = [cli("lock"), cli("lock", "--hash-missing", "download")]
    finally:
        indexes.pytorch_server.clear_faults()
    for result in results:
        assert_refused(result, ExitCode.INDEX)
        assert "401" in result.stderr and "to compute missing hashes" in result.stderr
        assert TORCH_SECRET not in result.stdout + result.stderr
    assert not (fixture_env / "pylock.toml").exists()
    assert _leaks(fixture_env) == []
