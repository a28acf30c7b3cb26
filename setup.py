"""The schema (sql/, the contract, at the top of the source tree) ships inside the
wheel as publisher/sql/, so an installed service migrates without the checkout:
`publisher-admin migrate`. Everything else is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithSchema(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "publisher" / "sql"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(Path(__file__).resolve().parent.joinpath("sql").glob("*.sql")):
            shutil.copyfile(path, target / path.name)


setup(cmdclass={"build_py": BuildWithSchema})
