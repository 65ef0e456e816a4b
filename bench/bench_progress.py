"""What the progress display costs: `envlock sync` off a terminal against under a pty (`script`).

    python bench/bench_progress.py

Hermetic (the fixture indexes), an empty cache each run so there are downloads to report,
`--link-mode hardlink --no-check-imports` so the install is not the measure; 7 rounds,
alternating, medians. The pty run also pays for `script` and for importing rich.
"""

import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _hermetic import SPEC, hermetic
from _installed import as_installed

as_installed()

work = Path(tempfile.mkdtemp(prefix="envlock-bench-progress-"))
served, env = hermetic(work)
env.update(ENVLOCK_NVIDIA_SMI="/nonexist", ENVLOCK_REVIEW_GATE="off", ENVLOCK_DOCKER_REGISTRY="off")
env.pop("PYTHONDONTWRITEBYTECODE", None)
(work / "torchenv.toml").write_text(SPEC)
subprocess.run(
    [sys.executable, "-m", "envlock", "lock"], cwd=work, env=env, check=True, capture_output=True
)
t: dict[str, list[float]] = {"plain": [], "terminal": []}
for i in range(7):
    for mode in ("plain", "terminal") if i % 2 == 0 else ("terminal", "plain"):
        shutil.rmtree(work / "cache", ignore_errors=True)  # empty cache: downloads to report
        cmd = [
            sys.executable,
            "-m",
            "envlock",
            "sync",
            "--venv",
            f"v{i}{mode}",
            "--link-mode",
            "hardlink",
            "--no-check-imports",
        ]
        s = time.perf_counter()
        if mode == "plain":
            subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
        else:
            subprocess.run(
                [shutil.which("script") or "script", "-qec", shlex.join(cmd), "/dev/null"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
        t[mode].append(time.perf_counter() - s)
print({k: round(statistics.median(v), 3) for k, v in t.items()})
served.close()
shutil.rmtree(work, ignore_errors=True)
