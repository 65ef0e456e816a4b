"""envlock.spec: torchenv.toml text -> Spec, every problem reported at once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from packaging.specifiers import SpecifierSet

from envlock.errors import SpecError
from envlock.spec import (
    Indexes,
    Platform,
    TorchSource,
    effective_indexes,
    normalise_cuda,
    parse_spec_text,
    spec_digest,
    torch_specifier,
)

MINIMAL = '[env]\npython = "3.11"\n[torch]\nversion = "2.6"\ncuda = "12.4"\n'


def _spec(env: str = "", torch: str = "", rest: str = "") -> str:
    return (
        f'[env]\npython = "3.11"\n{env}\n[torch]\nversion = "2.6"\ncuda = "12.4"\n{torch}\n{rest}'
    )


@pytest.mark.parametrize(
    ("written", "specifier"),
    [
        ("2.6", "==2.6.*"),
        (" 2.6 ", "==2.6.*"),
        ("2.6.1", "==2.6.1"),
        (">=2.5,<2.7", ">=2.5,<2.7"),
        ("~=2.6.0", "~=2.6.0"),
    ],
)
def test_torch_specifier(written: str, specifier: str) -> None:
    assert torch_specifier(written) == SpecifierSet(specifier)


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("12.4", "12.4"),
        ("cu124", "12.4"),
        ("CU126", "12.6"),
        ("cu130", "13.0"),
        ("12", "12"),
        ("CPU", "cpu"),
        (" xpu ", "xpu"),
        ("rocm6.2", "rocm6.2"),
        ("Auto", "auto"),
    ],
)
def test_normalise_cuda(written: str, normal: str) -> None:
    assert normalise_cuda(written) == normal


@pytest.mark.parametrize(
    ("cuda", "stored"),
    [("12.4", "12.4"), ("cu126", "12.6"), ("12", "12"), ("cpu", "cpu"), ("rocm6.2.4", "rocm6.2.4")],
)
def test_the_cuda_request_is_stored_normalised(cuda: str, stored: str) -> None:
    spec = parse_spec_text(MINIMAL.replace('"12.4"', f'"{cuda}"'))
    assert spec.torch.cuda == stored


@pytest.mark.parametrize(
    ("env", "platforms"),
    [
        ("", (Platform.LINUX_X86_64,)),
        ('platforms = ["macos-arm64"]', (Platform.MACOS_ARM64,)),
        # declared order does not matter, duplicates collapse: the enum's order is kept
        (
            'platforms = ["windows-x86_64", "linux-x86_64", "windows-x86_64"]',
            (Platform.LINUX_X86_64, Platform.WINDOWS_X86_64),
        ),
    ],
)
def test_platforms(env: str, platforms: tuple[Platform, ...]) -> None:
    assert parse_spec_text(_spec(env=env)).platforms == platforms


@pytest.mark.parametrize(
    ("packages", "requirements"),
    [
        ('six = "*"', ["six"]),
        ('six = ""', ["six"]),
        ('Six = ">=1.16"', ["Six>=1.16"]),
        ('numpy = "<2,>=1.26"', ["numpy<2,>=1.26"]),
        (
            'transformers = { version = ">=4.40", extras = ["torch"], markers = "sys_platform == \'linux\'" }',
            ['transformers[torch]>=4.40; sys_platform == "linux"'],
        ),
        ('b = "*"\na = "*"', ["a", "b"]),  # sorted by name
    ],
)
def test_packages_become_requirements(packages: str, requirements: list[str]) -> None:
    spec = parse_spec_text(_spec(rest=f"[packages]\n{packages}\n"))
    assert [str(r) for r in spec.packages] == requirements


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00Z", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        ("2026-11-01T10:00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),  # local: taken as UTC
        ('"2026-11-01T10:00:00Z"', datetime(2026, 11, 1, 10, tzinfo=UTC)),  # a string too
    ],
)
def test_exclude_newer_is_a_utc_moment(value: str, moment: datetime) -> None:
    spec = parse_spec_text(_spec(rest=f"[resolution]\nexclude-newer = {value}\n"))
    assert spec.exclude_newer == moment


@pytest.mark.parametrize(
    ("torch", "field", "value"),
    [
        ("vision = true", "vision", True),
        ("audio = true", "audio", True),
        ('source = "pypi"', "source", TorchSource.PYPI),
        ('source = "pytorch-index"', "source", TorchSource.PYTORCH_INDEX),
        ("", "source", TorchSource.AUTO),
    ],
)
def test_torch_options(torch: str, field: str, value: object) -> None:
    assert getattr(parse_spec_text(_spec(torch=torch)).torch, field) == value


BAD_SPECS = {
    "empty": ("", ["is empty"]),
    "not-toml": ("[env\n", ["is not valid TOML"]),
    "python-patch": (
        MINIMAL.replace('python = "3.11"', 'python = "3.11.4"'),
        ["env.python", "3.11.4"],
    ),
    "python-float": (MINIMAL.replace('python = "3.11"', "python = 3.11"), ["env.python"]),
    "python-missing": (MINIMAL.replace('python = "3.11"\n', ""), ["env.python: missing"]),
    "table-misspelt": (
        MINIMAL.replace("[torch]", "[tourch]"),
        ["[torch]: missing table", "did you mean 'torch'"],
    ),
    "torch-not-a-version": (
        MINIMAL.replace('version = "2.6"', 'version = "two"'),
        ["torch.version", "'two'"],
    ),
    "torch-version-float": (
        MINIMAL.replace('version = "2.6"', "version = 2.6"),
        ["torch.version: expected a string"],
    ),
    "cuda-auto": (MINIMAL.replace('"12.4"', '"auto"'), ['"auto" cannot be locked']),
    "cuda-unknown": (MINIMAL.replace('"12.4"', '"cuda12"'), ["unknown build 'cuda12'"]),
    "vision-int": (MINIMAL + "vision = 1\n", ["torch.vision: expected true or false"]),
    "source-unknown": (MINIMAL + 'source = "pipy"\n', ["unknown source 'pipy'", "one of: auto"]),
    "key-misspelt": (MINIMAL + 'cudaa = "12.4"\n', ["unknown key 'cudaa'", "did you mean 'cuda'"]),
    "platform-misspelt": (
        _spec(env='platforms = ["linux-x86-64"]'),
        ["env.platforms[0]", "did you mean"],
    ),
    "platforms-empty": (_spec(env="platforms = []"), ["env.platforms: expected a non-empty array"]),
    "torch-in-packages": (_spec(rest='[packages]\ntorch = "*"\n'), ["chosen by the [torch] table"]),
    "torchvision-any-case": (
        _spec(rest='[packages]\nTorchVision = "*"\n'),
        ["chosen by the [torch] table"],
    ),
    "direct-url-name": (
        _spec(rest='[packages]\n"six @ https://x/six.whl" = "*"\n'),
        ["is not a package name"],
    ),
    "bad-specifier": (
        _spec(rest='[packages]\nsix = "latest"\n'),
        ["'latest' is not a PEP 440 specifier"],
    ),
    "package-int": (
        _spec(rest="[packages]\nsix = 1\n"),
        ["expected a version specifier string or a table"],
    ),
    "extras-not-array": (
        _spec(rest='[packages]\nsix = { extras = "x" }\n'),
        ["packages.six.extras"],
    ),
    "exclude-newer-junk": (
        _spec(rest='[resolution]\nexclude-newer = "soon"\n'),
        ["resolution.exclude-newer"],
    ),
    "index-not-http": (
        _spec(rest='[indexes]\npypi = "ftp://x"\n'),
        ["indexes.pypi: expected an http(s)"],
    ),
    "index-credentials": (
        _spec(rest='[indexes]\npypi = "https://u:s3cret@x/simple"\n'),
        ["carries credentials"],
    ),
    "variant-dotted": (_spec(rest='[variants."a.b"]\ncuda = "cpu"\n'), ["variants.a.b", "no dots"]),
    "variant-adds-platform": (
        _spec(rest='[variants.arm]\nplatforms = ["linux-aarch64"]\n'),
        ["variants.arm.platforms", "not in [env] platforms"],
    ),
    "variant-cuda-auto": (_spec(rest='[variants.bad]\ncuda = "auto"\n'), ["variants.bad.cuda"]),
}


@pytest.mark.parametrize(("text", "fragments"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_a_bad_spec_names_what_and_where(text: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec_text(text)
    shown = f"{raised.value.message}\n{raised.value.hint}"
    assert raised.value.hint
    for fragment in fragments:
        assert fragment in shown
    assert "s3cret" not in shown


def test_every_problem_is_listed_at_once() -> None:
    text = MINIMAL.replace('python = "3.11"', 'python = "3"').replace('"12.4"', '"cuda12"')
    with pytest.raises(SpecError, match=r"has 2 problems:\n  - env.python.*\n  - torch.cuda"):
        parse_spec_text(text)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, Indexes(pypi="https://spec/simple", pytorch="https://spec/whl")),
        (
            {"ENVLOCK_PYPI_INDEX_URL": "https://mirror/simple/"},
            Indexes(pypi="https://mirror/simple", pytorch="https://spec/whl"),
        ),
        (
            {"ENVLOCK_PYTORCH_INDEX_URL": "https://t/whl", "ENVLOCK_PYPI_INDEX_URL": ""},
            Indexes(pypi="https://spec/simple", pytorch="https://t/whl"),
        ),
    ],
    ids=["spec", "pypi-overridden", "empty-is-unset"],
)
def test_effective_indexes(environ: dict[str, str], expected: Indexes) -> None:
    spec = Indexes(pypi="https://spec/simple", pytorch="https://spec/whl")
    assert effective_indexes(spec, environ) == expected


@pytest.mark.parametrize(
    "other",
    [
        '# a comment\n[torch]\ncuda = "cu124"\nversion = "2.6"\n[env]\npython = "3.11"\n',
        '[env]\npython = "3.11"\nplatforms = ["linux-x86_64"]\n[torch]\nversion = "2.6"\n'
        'cuda = "12.4"\nsource = "auto"\nvision = false\n',
    ],
    ids=["reordered-and-spelled-otherwise", "defaults-written-out"],
)
def test_the_digest_ignores_how_a_spec_is_written(other: str) -> None:
    indexes = Indexes()
    assert spec_digest(parse_spec_text(other), indexes) == spec_digest(
        parse_spec_text(MINIMAL), indexes
    )


@pytest.mark.parametrize(
    ("text", "indexes"),
    [
        (MINIMAL.replace('"12.4"', '"12.6"'), Indexes()),
        (MINIMAL + "vision = true\n", Indexes()),
        (MINIMAL + '[packages]\nsix = "*"\n', Indexes()),
        (MINIMAL, Indexes(pypi="https://mirror/simple")),
    ],
    ids=["cuda", "vision", "packages", "index"],
)
def test_the_digest_follows_what_the_lock_depends_on(text: str, indexes: Indexes) -> None:
    base = spec_digest(parse_spec_text(MINIMAL), Indexes())
    digest = spec_digest(parse_spec_text(text), indexes)
    assert digest != base
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64


def test_a_variant_overrides_torch_and_narrows_platforms() -> None:
    spec = parse_spec_text(
        _spec(
            env='platforms = ["linux-x86_64", "linux-aarch64"]',
            rest='[variants.cpu]\ncuda = "cpu"\nplatforms = ["linux-aarch64"]\n',
        )
    )
    variant = spec.variant("cpu")
    assert (variant.torch.cuda, variant.torch.version) == ("cpu", "2.6")
    assert variant.platforms == (Platform.LINUX_AARCH64,)
    assert variant.variants == ()
    with pytest.raises(SpecError, match="no variant 'gpu' \\(it has: cpu\\)"):
        spec.variant("gpu")


def test_requires_python_and_package_names() -> None:
    spec = parse_spec_text(_spec(rest='[packages]\n"Ruamel.Yaml" = "*"\n'))
    assert spec.requires_python == SpecifierSet("==3.11.*")
    assert spec.package_names == {"ruamel-yaml"}
