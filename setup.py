"""Maps the two source trees onto one import package.

The client package lives in ``client/thresher`` and the services in ``services/``; both install as
``thresher`` and ``thresher.services`` so that services share the client's stubs and formats.
"""

from setuptools import find_packages, setup

client_packages = find_packages("client")
service_packages = ["thresher.services"] + [f"thresher.services.{p}" for p in find_packages("services")]

setup(
    packages=client_packages + service_packages,
    package_dir={"thresher": "client/thresher", "thresher.services": "services"},
)
