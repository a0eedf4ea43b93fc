"""helm, berth-validate and KServe's CRDs, from scripts/deploy_tools.sh."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from berth_server import REPO_ROOT

SCRIPT: Final = REPO_ROOT / "scripts" / "deploy_tools.sh"
VALIDATE_MODULE: Final = REPO_ROOT / "deploy" / "validate"


@dataclass(frozen=True)
class DeployTools:
    helm: Path
    validate: Path
    kserve_crds: Path

    def check(self, *files: Path, crds: bool = False) -> subprocess.CompletedProcess[str]:
        """berth-validate over `files` (with KServe's CRDs when `crds`)."""
        command = [str(self.validate), *(["--crds", str(self.kserve_crds)] if crds else []), *map(str, files)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


@cache
def deploy_tools() -> DeployTools:
    """Installs (first time: downloads and builds, a few minutes) and returns the tools."""
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False, timeout=1200)
    assert done.returncode == 0, f"scripts/deploy_tools.sh failed:\n{done.stderr}"
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return DeployTools(Path(values["HELM"]), Path(values["VALIDATE"]), Path(values["KSERVE_CRDS"]))
