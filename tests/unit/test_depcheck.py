"""materialise.depcheck.unmet: uv pip check's question, answered from installed metadata."""

from __future__ import annotations

from envlock.materialise.depcheck import Installed, unmet

LINUX = {
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def test_missing_and_wrong_versions_are_found() -> None:
    installed = [
        Installed(name="sympy", version="1.13.1", requires=["mpmath<1.4,>=1.1.0"]),
        Installed(name="torch", version="2.6.0+cu126", requires=["sympy==1.13.1", "filelock"]),
        Installed(name="filelock", version="3.16.1", requires=[]),
        Installed(name="Transformers", version="4.50.0", requires=["tokenizers<0.22,>=0.21"]),
        Installed(name="tokenizers", version="0.22.0", requires=[]),
    ]
    assert unmet(installed, LINUX) == (
        "Transformers 4.50.0 requires tokenizers<0.22,>=0.21, but 0.22.0 is installed",
        "sympy 1.13.1 requires mpmath<1.4,>=1.1.0, which is not installed",
    )


def test_markers_extras_and_names_as_the_environment_says() -> None:
    installed = [
        Installed(
            name="torch",
            version="2.6.0",
            requires=[
                'nvidia-cublas-cu12==12.4.5.8; platform_system == "Linux"',
                'pywin32; sys_platform == "win32"',
                'optree>=0.13; extra == "optree"',  # an extra nobody asked for
                "typing_extensions>=4.10",
            ],
        ),
        Installed(name="nvidia_cublas_cu12", version="12.4.5.8", requires=[]),
        Installed(name="typing-extensions", version="4.13.0rc1", requires=[]),  # a pre-release
    ]
    assert unmet(installed, LINUX) == ()


def test_an_unreadable_requirement_is_a_problem_not_a_crash() -> None:
    installed = [Installed(name="odd", version="1", requires=["not a requirement ((("])]
    assert unmet(installed, LINUX) == (
        "odd 1 declares an unreadable requirement 'not a requirement ((('",
    )


def test_a_project_installed_twice_is_a_problem() -> None:
    """Which of the two imports is the file system's order (a wheel shipping another
    project's .dist-info): uv pip check reports it, and so does this."""
    installed = [
        Installed(name="six", version="1.16.0", requires=[], directory="six-1.16.0.dist-info"),
        Installed(name="six", version="1.17.0", requires=[], directory="six-1.17.0.dist-info"),
    ]
    assert unmet(installed, LINUX) == (
        "six is installed more than once (six-1.16.0.dist-info, six-1.17.0.dist-info)",
    )


def test_a_requirement_without_bounds_takes_any_version() -> None:
    installed = [
        Installed(name="a", version="1", requires=["snap"]),
        Installed(name="snap", version="1.0-SNAPSHOT", requires=[]),
    ]
    assert unmet(installed, LINUX) == ()
