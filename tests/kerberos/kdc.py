"""A throwaway MIT Kerberos KDC on loopback, in a temporary folder: a realm, its database,
principals, a keytab, krb5.conf (for KRB5_CONFIG) and a foreground krb5kdc on a free port.

Needs MIT Kerberos' server tools (Debian: krb5-kdc, krb5-admin-server): kdb5_util,
kadmin.local, krb5kdc. ``.ci/run-kerberos`` installs them when run as root with apt.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

TOOLS = ("kdb5_util", "kadmin.local", "krb5kdc")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (f"{d}/{name}" for d in _SBIN if Path(d, name).exists()), None
    )
    if found is None:
        raise RuntimeError(f"{name} not found: install MIT Kerberos (krb5-kdc krb5-admin-server)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayKdc:
    """``with ThrowawayKdc(folder, "BRIDGE.TEST") as kdc:`` — the realm lives until the block
    ends; ``kdc.env`` is what a process needs to use it (KRB5_CONFIG, no ambient ccache)."""

    def __init__(self, folder: Path, realm: str, *, hosts: tuple[str, ...] = ("localhost",)):
        self.folder = folder
        self.realm = realm
        self.port = _free_port()
        self.krb5_conf = folder / "krb5.conf"
        self.kdc_conf = folder / "kdc.conf"
        self.log = folder / "kdc.log"
        self._process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        mapping = "".join(f"  {host} = {realm}\n" for host in hosts)
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"  default_realm = {realm}\n"
            "  dns_lookup_kdc = false\n  dns_lookup_realm = false\n"
            # The SPN is HTTP/<the name in the URL>, never a reverse-DNS rewrite of it.
            "  dns_canonicalize_hostname = false\n  rdns = false\n"
            "  udp_preference_limit = 1\n"  # TCP only: one port to wait for
            f"  default_ccache_name = FILE:{folder}/ccache\n"
            f"[realms]\n  {realm} = {{\n    kdc = 127.0.0.1:{self.port}\n  }}\n"
            f"[domain_realm]\n{mapping}"
        )
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f"  kdc_listen = 127.0.0.1:{self.port}\n  kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            f"[realms]\n  {realm} = {{\n"
            f"    database_name = {folder}/principal\n"
            f"    key_stash_file = {folder}/stash\n"
            f"    acl_file = {folder}/kadm5.acl\n  }}\n"
            f"[logging]\n  kdc = FILE:{self.log}\n"
        )
        self.env = {
            **os.environ,
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.kdc_conf),
            "KRB5CCNAME": f"FILE:{folder}/ccache",
        }

    # -- realm -----------------------------------------------------------------------------

    def _run(self, *args: str) -> str:
        proc = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} failed: {proc.stderr.strip()}")
        return proc.stdout + proc.stderr

    def kadmin(self, query: str) -> str:
        return self._run(tool("kadmin.local"), "-r", self.realm, "-q", query)

    def add_user(self, name: str, password: str) -> str:
        out = self.kadmin(f"addprinc -pw {password} {name}")
        if "created" not in out:
            raise RuntimeError(f"addprinc {name}: {out.strip()}")
        return f"{name}@{self.realm}"

    def add_service(self, principal: str, keytab: Path) -> Path:
        """A service principal with a random key, exported to ``keytab``."""
        self.kadmin(f"addprinc -randkey {principal}")
        out = self.kadmin(f"ktadd -k {keytab} {principal}")
        if "added to keytab" not in out:
            raise RuntimeError(f"ktadd {principal}: {out.strip()}")
        keytab.chmod(0o600)
        return keytab

    # -- process ---------------------------------------------------------------------------

    def __enter__(self) -> ThrowawayKdc:
        master = secrets.token_urlsafe(18)
        self._run(tool("kdb5_util"), "-r", self.realm, "create", "-s", "-P", master)
        self._process = subprocess.Popen(
            [tool("krb5kdc"), "-n", "-r", self.realm],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError(f"krb5kdc did not start; see {self.log}") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
