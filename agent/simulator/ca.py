"""A throwaway certificate authority and a loopback server certificate for the simulator, and
the one helper that builds the simulator's (and the tests') certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> tuple[Path, Path, Path]:
        """Write ca.pem, server.pem and server-key.pem (key owner-only); return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        ca, cert, key = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
        ca.write_bytes(self.ca_pem)
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600, exist_ok=True)
        key.chmod(0o600)
        key.write_bytes(self.key_pem)
        return ca, cert, key

    @classmethod
    def load(cls, directory: Path) -> TlsMaterial | None:
        files = [directory / n for n in ("ca.pem", "server.pem", "server-key.pem")]
        if not all(f.exists() for f in files):
            return None
        return cls(*(f.read_bytes() for f in files))


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def certificate(
    subject: str | x509.Name,
    key: PrivateKey,
    *,
    issuer: tuple[x509.Name, PrivateKey] | None = None,
    days: float = 825,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate for ``key``, signed by ``issuer`` (its name and key; None: self-signed),
    valid from 5 minutes ago (clock skew) for ``days``, with ``extensions`` (value, critical)."""
    now = dt.datetime.now(dt.UTC)
    name = (
        subject
        if isinstance(subject, x509.Name)
        else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    )
    issuer_name, signer = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def key_pem(key: PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (files are written owner-only)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def generate(hostnames: tuple[str, ...] = ("localhost",), days: int = 825) -> TlsMaterial:
    """Create a CA and a server certificate valid for loopback names and addresses."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-backup simulator CA")])
    ca_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ca_cert = certificate(
        ca_name,
        ca_key,
        days=days,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (ca_usage, True),
            (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
        ],
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt_names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    alt_names += [x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = certificate(
        hostnames[0],
        key,
        issuer=(ca_name, ca_key),
        days=days,
        extensions=[
            (x509.SubjectAlternativeName(alt_names), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        ],
    )
    return TlsMaterial(ca_pem=pem(ca_cert), cert_pem=pem(cert), key_pem=key_pem(key))


# The UPN otherName of a certificate's SubjectAlternativeName (what WinRM maps a client
# certificate by, with the issuing CA's thumbprint).
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")


@dataclass(frozen=True)
class ClientAuthority:
    """A CA that issues WinRM client-authentication certificates (an enterprise PKI's role):
    the bridge host trusts it and maps certificates it issued to local accounts."""

    ca_pem: bytes
    ca_key_pem: bytes

    @classmethod
    def load_or_create(cls, directory: Path) -> ClientAuthority:
        cert, key = directory / "client-ca.pem", directory / "client-ca-key.pem"
        if cert.exists() and key.exists():
            return cls(cert.read_bytes(), key.read_bytes())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = certificate(
            "entra-backup simulator client CA",
            ca_key,
            extensions=[
                (x509.BasicConstraints(ca=True, path_length=0), True),
                (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
            ],
        )
        authority = cls(pem(ca_cert), key_pem(ca_key))
        directory.mkdir(parents=True, exist_ok=True)
        cert.write_bytes(authority.ca_pem)
        key.touch(mode=0o600, exist_ok=True)
        key.chmod(0o600)
        key.write_bytes(authority.ca_key_pem)
        return authority

    @property
    def thumbprint(self) -> str:
        """The issuer thumbprint a WinRM certificate mapping names (SHA-1, upper-case hex)."""
        return x509.load_pem_x509_certificate(self.ca_pem).fingerprint(hashes.SHA1()).hex().upper()

    def issue(self, upn: str, days: int = 825) -> bytes:
        """A client certificate for ``upn`` (SAN otherName UPN, client-auth EKU): PEM of the
        certificate followed by its private key, as the agent's client_certificate file."""
        ca_cert = x509.load_pem_x509_certificate(self.ca_pem)
        ca_key = serialization.load_pem_private_key(self.ca_key_pem, password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        encoded = upn.encode("utf-8")
        assert len(encoded) < 128  # short-form DER length
        upn_der = bytes([0x0C, len(encoded)]) + encoded  # UTF8String
        cert = certificate(
            upn.split("@")[0],
            key,
            issuer=(ca_cert.subject, ca_key),
            days=days,
            extensions=[
                (x509.SubjectAlternativeName([x509.OtherName(UPN_OID, upn_der)]), False),
                (x509.BasicConstraints(ca=False, path_length=None), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
            ],
        )
        return pem(cert) + key_pem(key)


def certificate_upn(der: bytes) -> str | None:
    """The UPN a client certificate carries in its SubjectAlternativeName, if any."""
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for name in names.get_values_for_type(x509.OtherName):
        if name.type_id == UPN_OID and len(name.value) >= 2 and name.value[0] == 0x0C:
            return name.value[2:].decode("utf-8", "replace")
    return None


def has_client_auth(der: bytes) -> bool:
    cert = x509.load_der_x509_certificate(der)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages
