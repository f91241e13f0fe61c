"""A self-signed certificate for a console that listens beyond loopback (NOTES.md).

Made once, at first start, in the data directory with the ``openssl`` command (a fixed argument list,
nothing from user input reaches a shell). Its SHA-256 fingerprint is logged and shown in the console so
a technician can check it in the browser's warning.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

from .._errors import StartupError

log = logging.getLogger("centralita.console.tls")


def fingerprint(cert_pem: str) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert_pem)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure_certificate(data_dir: Path, host: str) -> tuple[Path, Path, str]:
    """(certificate, key, SHA-256 fingerprint), making them on first use."""
    directory = data_dir / "tls"
    cert, key = directory / "console.crt", directory / "console.key"
    if not (cert.exists() and key.exists()):
        openssl = shutil.which("openssl")
        if openssl is None:
            raise StartupError(
                "console: HTTPS needs a certificate and the openssl command is missing; install it with "
                "`apt-get install -y openssl`, or set [console] https = false"
            )
        directory.mkdir(parents=True, exist_ok=True)
        names = ["DNS:localhost", "IP:127.0.0.1"]
        if host and host not in ("0.0.0.0", "::", "localhost", "127.0.0.1"):
            try:
                names.append(f"IP:{ipaddress.ip_address(host)}")
            except ValueError:
                names.append(f"DNS:{host}")
        old_umask = os.umask(0o077)
        try:
            subprocess.run(
                [
                    openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "3650", "-subj", "/CN=centralita console",
                    "-addext", "subjectAltName=" + ",".join(names),
                    "-keyout", str(key), "-out", str(cert),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )  # fmt: skip
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise StartupError(f"console: could not make a self-signed certificate in {directory}: {exc}") from None
        finally:
            os.umask(old_umask)
        made = True
    else:
        made = False
    print_fp = fingerprint(cert.read_text())
    if made:
        print(f"console certificate SHA-256 fingerprint: {print_fp}", file=sys.stderr, flush=True)
    log.info("console certificate %s SHA-256 fingerprint %s", cert, print_fp)
    return cert, key, print_fp
