"""envlock.adopt / adopt_conda / keep: what a project's own files ask for, as torchenv.toml terms."""

from __future__ import annotations

import tomllib

import pytest

from envlock.adopt import adopt_text, poetry_specifier, referenced_files
from envlock.adopt_conda import parse_environment
from envlock.errors import UsageError
from envlock.keep import kept_pins, with_kept
from tests.unit.data import channels

# (file name, text) -> (torch, cuda, python, vision, packages)
CASES: dict[str, tuple[str, str, tuple[object, ...]]] = {
    "label pin": (
        "requirements.txt",
        "torch==2.3.1+cu118\ntransformers==4.40.0\n",
        ("2.3.1", "11.8", None, False, ("transformers==4.40.0",)),
    ),
    "index url": (
        "requirements.txt",
        "--index-url https://download.pytorch.org/whl/cu121\ntorch>=2.1\ntorchvision\n",
        (">=2.1", "12.1", None, True, ()),
    ),
    "find-links and runtime pins": (
        "requirements.txt",
        "-f https://download.pytorch.org/whl/torch_stable.html\ntorch==2.0.1+cpu\n"
        "nvidia-cudnn-cu12==9.1.0.70\ntriton==3.2.0\n",
        ("2.0.1", "cpu", None, False, ()),
    ),
    "pip command line": (
        "setup.sh",
        "set -e\npython -m pip install 'torch==2.6.*' datasets "
        "--extra-index-url=https://download.pytorch.org/whl/rocm6.2.4\n",
        ("2.6", "rocm6.2.4", None, False, ("datasets",)),
    ),
    "dockerfile": (
        "Dockerfile",
        "FROM pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime\nRUN pip install wandb \\\n    six\n",
        ("2.6.0", "12.4", None, False, ("six", "wandb")),
    ),
    "conda": (
        "environment.yml",
        "name: x\ndependencies:\n  - python=3.10\n  - pytorch=2.3\n  - pytorch-cuda=12.1\n"
        "  - torchvision\n  - numpy>=1.26\n  - pip:\n    - rich\n",
        ("2.3", "12.1", "3.10", True, ("numpy>=1.26", "rich")),
    ),
    "conda build string": (
        "environment.yaml",
        "dependencies:\n  - pytorch::pytorch=2.1.0=py3.11_cuda11.8_cudnn8.7.0_0\n  - cpuonly\n",
        ("2.1.0", "11.8", None, False, ()),
    ),
    "uv sources": (
        "pyproject.toml",
        '[project]\ndependencies = ["torch>=2.5", "six"]\n'
        '[[tool.uv.index]]\nname = "cu"\nurl = "https://download.pytorch.org/whl/cu124"\n'
        '[tool.uv.sources]\ntorch = { index = "cu" }\n',
        (">=2.5", "12.4", None, False, ("six",)),
    ),
    "pdm source": (
        "pyproject.toml",
        '[project]\ndependencies = ["torch==2.4.0"]\n'
        '[[tool.pdm.source]]\nname = "torch"\nurl = "https://download.pytorch.org/whl/cu121"\n',
        ("2.4.0", "12.1", None, False, ()),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_adopted_intent(case: str) -> None:
    name, text, (torch, cuda, python, vision, packages) = CASES[case]
    intent = adopt_text(name, text, channels=channels())
    assert (intent.torch, intent.cuda, intent.python, intent.vision) == (
        torch,
        cuda,
        python,
        vision,
    )
    assert intent.packages == packages
    assert intent.notes  # every choice is explained


def test_conflicting_builds_keep_the_first_and_say_so() -> None:
    text = "--index-url https://download.pytorch.org/whl/cu121\ntorch==2.3.1+cu118\n"
    intent = adopt_text("requirements.txt", text, channels=channels())
    assert intent.cuda == "12.1"
    assert any("says 11.8" in n and "kept 12.1" in n for n in intent.notes)


def test_direct_urls_and_editables_are_skipped_with_a_note() -> None:
    text = "-e .\nmylib @ https://example.com/mylib-1.0-py3-none-any.whl\nsix\n"
    intent = adopt_text("requirements.txt", text, channels=channels())
    assert intent.packages == ("six",)
    assert any("@ URL" in n for n in intent.notes) and any("editable" in n for n in intent.notes)


def test_includes_and_constraints() -> None:
    text = "-r base.txt\n-c pins.txt\nnumpy\n"
    assert referenced_files(text) == ("base.txt", "pins.txt")
    includes = {"base.txt": "six==1.16.0\n", "pins.txt": "numpy<2.3\nidna==3\n"}
    intent = adopt_text("requirements.txt", text, channels=channels(), includes=includes)
    assert intent.packages == ("numpy<2.3", "six==1.16.0")  # a constraint adds nothing
    assert intent.pins == {"six": "1.16.0"}


@pytest.mark.parametrize(
    ("poetry", "pep440"),
    [("^2.3", "<3,>=2.3"), ("^0.21", "<0.22,>=0.21"), ("~2.3.1", "<2.4,>=2.3.1"), ("*", "")],
)
def test_poetry_specifiers(poetry: str, pep440: str) -> None:
    assert poetry_specifier(poetry) == pep440


def test_an_untranslatable_poetry_version_is_refused() -> None:
    with pytest.raises(UsageError, match="not one envlock can translate"):
        poetry_specifier("^x.y || banana")


def test_environment_subset_parser() -> None:
    env = parse_environment(
        "name: 'proj' # comment\nchannels:\n  - conda-forge\ndependencies:\n  - numpy\n"
        '  - pip:\n      - "rich>=13"\n  - scipy\n',
        source="environment.yml",
    )
    assert (env.name, env.channels, env.conda, env.pip) == (
        "proj",
        ["conda-forge"],
        ["numpy", "scipy"],
        ["rich>=13"],
    )


def test_kept_pins_leave_the_build_to_torch() -> None:
    pins = {"torch": "2.6.0+cu124", "nvidia-cudnn-cu12": "9.1", "Six": "1.16.0"}
    assert kept_pins(pins) == {"six": "1.16.0"}


def test_with_kept_puts_the_pins_first_and_drops_their_old_entries() -> None:
    previous = (
        'version = 1\nrevision = 3\nrequires-python = "==3.11.*"\n\n'
        '[[package]]\nname = "six"\nversion = "1.17.0"\nsource = { registry = "R" }\n\n'
        '[[package]]\nname = "idna"\nversion = "3.0"\nsource = { registry = "R" }\n'
    )
    merged = with_kept(previous, {"six": "1.16.0"}, registry="R", requires_python="==3.11.*")
    assert merged is not None
    packages = tomllib.loads(merged)["package"]
    assert [(p["name"], p["version"]) for p in packages] == [("six", "1.16.0"), ("idna", "3.0")]
