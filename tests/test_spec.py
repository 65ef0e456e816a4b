from __future__ import annotations

from datetime import UTC, datetime

import pytest
from packaging.specifiers import SpecifierSet

from envlock.errors import ExitCode, SpecError
from envlock.spec import (
    Indexes,
    Platform,
    TorchSource,
    effective_indexes,
    parse_spec_text,
    spec_digest,
)

MINIMAL = """
[env]
python = "3.11"

[torch]
version = "2.6"
cuda = "12.4"
"""


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec_text(text)
    return info.value


def test_minimal_spec_defaults() -> None:
    spec = parse_spec_text(MINIMAL)
    assert spec.python == "3.11"
    assert spec.platforms == (Platform.LINUX_X86_64,)
    assert spec.torch.specifier == SpecifierSet("==2.6.*")
    assert spec.torch.cuda == "12.4"
    assert spec.torch.source is TorchSource.AUTO
    assert spec.packages == ()


def test_full_spec() -> None:
    spec = parse_spec_text(
        MINIMAL.replace('cuda = "12.4"', 'cuda = "cu126"\nvision = true\nsource = "pypi"')
        + """
[packages]
transformers = ">=4.40,<5"
datasets = "*"
accelerate = { version = ">=1", extras = ["deepspeed"] }

[resolution]
exclude-newer = 2026-11-01T00:00:00Z

[indexes]
pypi = "https://mirror.example/simple/"
"""
    )
    assert spec.torch.cuda == "12.6"
    assert spec.torch.vision is True
    assert [str(r) for r in spec.packages] == [
        "accelerate[deepspeed]>=1",
        "datasets",
        "transformers<5,>=4.40",
    ]
    assert spec.exclude_newer == datetime(2026, 11, 1, tzinfo=UTC)
    assert spec.indexes.pypi == "https://mirror.example/simple"


def test_empty_file_is_an_error() -> None:
    error = _error("   \n")
    assert "empty" in error.message
    assert "envlock init" in error.hint
    assert error.exit_code == ExitCode.SPEC


def test_toml_syntax_error_names_line_and_column() -> None:
    error = _error('[env]\npython = "3.11\n')
    assert "line 2" in error.message
    assert "column" in error.message


def test_unknown_key_suggests_the_right_one() -> None:
    error = _error(MINIMAL.replace("[torch]", "[torch]\nvison = true"))
    assert "unknown key 'vison'" in error.message
    assert "did you mean 'vision'" in error.message


def test_unknown_table_suggests_the_right_one() -> None:
    error = _error(MINIMAL + "\n[package]\nsix = '*'\n")
    assert "did you mean 'packages'" in error.message


def test_all_problems_are_reported_at_once() -> None:
    error = _error("[env]\npython = 3.11\n[torch]\nversion = 2\ncuda = true\n")
    assert "3 problems" in error.message
    assert "env.python" in error.message
    assert "torch.version" in error.message
    assert "torch.cuda" in error.message


def test_wrong_type_is_named() -> None:
    error = _error(MINIMAL.replace('python = "3.11"', "python = 3.11"))
    assert "env.python" in error.message
    assert "3.11" in error.message


def test_auto_cuda_is_refused_with_a_hint() -> None:
    error = _error(MINIMAL.replace('"12.4"', '"auto"'))
    assert '"auto" cannot be locked' in error.message
    assert "envlock init" in error.hint


def test_torch_in_packages_is_refused() -> None:
    error = _error(MINIMAL + '\n[packages]\ntorchvision = "*"\n')
    assert "[torch]" in error.message


def test_bad_specifier_in_packages() -> None:
    error = _error(MINIMAL + '\n[packages]\ntransformers = "=>4"\n')
    assert "packages.transformers" in error.message


def test_unknown_platform_suggests() -> None:
    error = _error(
        MINIMAL.replace('python = "3.11"', 'python = "3.11"\nplatforms = ["linux-x86-64"]')
    )
    assert "did you mean 'linux-x86_64'" in error.message


def test_bad_exclude_newer() -> None:
    error = _error(MINIMAL + '\n[resolution]\nexclude-newer = "yesterday"\n')
    assert "resolution.exclude-newer" in error.message


def test_digest_ignores_formatting_and_order() -> None:
    a = parse_spec_text(MINIMAL + '\n[packages]\nsix = "*"\nnumpy = ">=2"\n')
    b = parse_spec_text(
        '# comment\n[torch]\ncuda="12.4"\nversion="2.6"\n[env]\npython="3.11"\n'
        '[packages]\nnumpy=">=2"\nsix="*"\n'
    )
    assert spec_digest(a, Indexes()) == spec_digest(b, Indexes())


def test_digest_changes_with_the_spec_and_the_indexes() -> None:
    a = parse_spec_text(MINIMAL)
    b = parse_spec_text(MINIMAL.replace("12.4", "12.6"))
    assert spec_digest(a, Indexes()) != spec_digest(b, Indexes())
    assert spec_digest(a, Indexes()) != spec_digest(a, Indexes(pypi="https://m/simple"))


def test_environment_overrides_indexes() -> None:
    spec = parse_spec_text(MINIMAL)
    indexes = effective_indexes(
        spec.indexes,
        {"ENVLOCK_PYPI_INDEX_URL": "http://a/simple/", "ENVLOCK_PYTORCH_INDEX_URL": "http://b/whl"},
    )
    assert indexes == Indexes(pypi="http://a/simple", pytorch="http://b/whl")
