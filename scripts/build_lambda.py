"""Build build/lambda_signup.zip, byte for byte the same from the same sources.

The trigger's modules and whatever lambda_signup/requirements.txt names (nothing today: boto3
comes with the runtime) go into one zip with sorted entries, fixed timestamps and fixed modes,
so Terraform's source_code_hash only changes when the code does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "lambda_signup"
EPOCH = (1980, 1, 1, 0, 0, 0)


def requirements() -> list[str]:
    lines = (SOURCE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def files(staging: Path) -> list[tuple[str, Path]]:
    found = [(f"lambda_signup/{p.name}", p) for p in SOURCE.glob("*.py")]
    found += [
        (p.relative_to(staging).as_posix(), p)
        for p in staging.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    return sorted(found)


def build(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        if requirements():
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target", tmp]
                + ["--platform", "manylinux2014_x86_64", "--only-binary=:all:"]
                + ["--python-version", "3.12", *requirements()],
                check=True,
            )
        partial = target.with_suffix(".zip.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for name, path in files(staging):
                info = zipfile.ZipInfo(name, date_time=EPOCH)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, whatever builds it
                zf.writestr(info, path.read_bytes())
        partial.replace(target)
    return target


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "lambda_signup.zip"
    print(build(out))
