"""Vendor the files Strawberry's GraphiQL page loads, so the page works offline.

Strawberry's page (``strawberry/static/graphiql.html``) loads React, GraphiQL and its
explorer plugin from a public CDN, each pinned to a version and a Subresource Integrity
hash. A registry behind a firewall, or a laptop on a plane, then gets a blank page. This
script takes each of those files from the npm registry (``npm pack``), checks it against
the page's own integrity hash, and writes it, with its package's licence, under
``src/lineagehub/api/graphiql_assets/<package>@<version>/``. ``lineagehub.api.ide``
serves them and points the page at them.

Run it after upgrading strawberry-graphql (``tests/api/test_ide.py`` fails until then):

    python scripts/vendor_graphiql.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lineagehub.api.ide import ASSET_DIR, cdn_assets, template  # noqa: E402


def main() -> int:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to take the files from the npm registry")
    assets = cdn_assets(template())
    if not assets:
        raise SystemExit("Strawberry's GraphiQL page loads nothing recognisable from the CDN")
    with tempfile.TemporaryDirectory() as tmp:
        # Built beside, swapped in at the end: a failed download leaves the old files.
        staged = Path(tmp) / "assets"
        packed: dict[str, Path] = {}
        for asset in assets:
            spec = f"{asset.package}@{asset.version}"
            if spec not in packed:
                out = Path(tmp) / spec.replace("/", "_")
                out.mkdir()
                packing = subprocess.run(  # noqa: S603 - fixed argv, a pinned package spec
                    [npm, "pack", spec, "--silent", "--pack-destination", str(out)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                name = packing.stdout.strip().splitlines()[-1]
                with tarfile.open(out / name) as tar:
                    _extract(tar, out)
                packed[spec] = out / "package"
                target = staged / spec
                target.mkdir(parents=True)
                licences = sorted(packed[spec].glob("LICEN[CS]E*"))
                if licences:
                    shutil.copyfile(licences[0], target / "LICENSE")
                else:  # e.g. @graphiql/plugin-explorer: only its package.json names one
                    meta = json.loads((packed[spec] / "package.json").read_text())
                    (target / "LICENSE").write_text(
                        f"{spec} is under the {meta['license']} licence, as its package.json "
                        f"says; the package ships no licence text.\n"
                    )
            data = (packed[spec] / asset.path).read_bytes()
            algorithm, _, expected = asset.integrity.partition("-")
            digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
            if digest != expected:
                raise SystemExit(f"{asset.url}: the npm file does not match the page's hash")
            dest = staged / spec / asset.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            print(
                f"{asset.url} -> {ASSET_DIR.relative_to(ROOT)}/{asset.local} ({len(data):,} bytes)"
            )
        if ASSET_DIR.exists():
            shutil.rmtree(ASSET_DIR)
        shutil.copytree(staged, ASSET_DIR)
    return 0


def _extract(tar: tarfile.TarFile, into: Path) -> None:
    """The package's regular files, nothing outside ``into`` (tarfile's "data" filter,
    which Pythons before 3.11.4 lack, does the same)."""
    for member in tar.getmembers():
        target = (into / member.name).resolve()
        if not member.isfile() or not target.is_relative_to(into.resolve()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        target.write_bytes(source.read())


if __name__ == "__main__":
    raise SystemExit(main())
