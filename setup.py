"""Ships the playbooks, roles and Vagrantfile inside the package (lab/_data) when a wheel is built:
`xenlab up` needs them, and an installed xenlab has no checkout beside it. The checkout keeps one
copy of each at the top, where Ansible and Vagrant users expect them."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("playbooks", "roles", "Vagrantfile", "ansible.cfg")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "lab" / "_data"
        for name in SHIPPED:
            src = Path(name)
            if src.is_dir():
                for f in sorted(src.rglob("*")):
                    if f.is_file() and "__pycache__" not in f.parts:
                        self.mkpath(str((target / f).parent))
                        self.copy_file(str(f), str(target / f))
            elif src.is_file():
                self.mkpath(str(target))
                self.copy_file(str(src), str(target / src))


setup(cmdclass={"build_py": BuildWithData})
