"""Where the package's parts are, installed or in the source tree, and where it may keep caches.

In the source tree the namespace's subpackages are links to the folders the repository keeps them in
(``immutable_deploy/domain`` -> ``lambdas/blue_green``, ``handlers`` -> ``lambdas/handlers``, ``cdk`` ->
``stacks``, ``workflow`` -> ``statemachine``); an installed wheel holds them as plain folders. Paths here
are not resolved, so that they name the package's parts in both."""

from __future__ import annotations

import os
from pathlib import Path

#: the ``immutable_deploy`` package folder
PACKAGE = Path(__file__).absolute().parent
#: the Lambda code: the domain package and the handlers (``immutable_deploy.handlers.<module>.handler``)
LAMBDA_PACKAGES = ("domain", "handlers")
#: the requirements of the functions' dependencies layer (pydantic, Powertools)
LAYER_REQUIREMENTS = PACKAGE / "cdk" / "layer" / "requirements.txt"


def source_tree() -> Path | None:
    """The repository this package runs from (a checkout, or an editable install of one), if any."""
    root = PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "lambdas").is_dir() and (root / "stacks").is_dir():
        return root
    return None


def cache_dir() -> Path:
    """Where builds are kept between runs: ``.build/`` of the source tree, else the user's cache
    (``$XDG_CACHE_HOME/immutable-deploy``, by default ``~/.cache/immutable-deploy``)."""
    root = source_tree()
    if root is not None:
        return root / ".build"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "immutable-deploy"
