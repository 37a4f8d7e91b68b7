"""Certificates for a TLS deployment test: a certificate authority and a service certificate it signed,
made with the ``openssl`` command, naming the host names compose.yaml's services are called by."""

from __future__ import annotations

import pathlib
import subprocess

# compose.yaml's TLS settings: container paths, the certificates being mounted at /tls from THRESHER_TLS_DIR.
TLS_VARIABLES = {
    "THRESHER_TLS_CERT": "/tls/cert.pem",
    "THRESHER_TLS_KEY": "/tls/key.pem",
    "THRESHER_TLS_ROOT_CERTS": "/tls/ca.pem",
}
# The names the services are called by inside the compose network, and from outside.
HOST_NAMES = ("metadata", "metadata-1", "metadata-2", "scanner", "flight-1", "flight-2", "localhost")


def make_certificates(folder: pathlib.Path) -> pathlib.Path:
    """A certificate authority (``ca.pem``) and one service certificate it signed (``cert.pem``,
    ``key.pem``) naming every host name of the deployment and 127.0.0.1; returns the folder."""

    def openssl(*words: str) -> None:
        subprocess.run(["openssl", *words], check=True, capture_output=True, cwd=folder)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=thresher test CA"
    )
    openssl("req", "-new", *curve, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=metadata")
    names = ",".join([*(f"DNS:{name}" for name in HOST_NAMES), "IP:127.0.0.1"])
    (folder / "ext.cnf").write_text(f"subjectAltName={names}\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return folder
